// The purchase form's item rows (web/templates/purchases/form.html), an enhancement only: without
// the script "More item rows" and each row's "Drop item" button ask the server, and the server
// computes the total when the purchase is saved.  With it, rows are added and dropped in place
// and the total follows what is typed (the server's sum stays the one that counts).
(function () {
  "use strict";
  var table = document.querySelector("table[data-item-rows]");
  var output = document.getElementById("purchase-total");
  if (!table || !output) {
    return;
  }
  var body = table.tBodies[0];
  var maxRows = parseInt(table.getAttribute("data-max-rows"), 10) || 50;
  var addButton = document.querySelector("[data-add-row]");

  function rows() {
    return Array.prototype.slice.call(body.querySelectorAll("tr[data-item-row]"));
  }

  function indexOf(row) {
    var input = row.querySelector("[data-item]");
    var match = input ? /-(\d+)-/.exec(input.name) : null;
    return match ? parseInt(match[1], 10) : 0;
  }

  // Whole cents, so that 0.1 + 0.2 is 0.30 as the server says.
  function cents(text) {
    var value = String(text || "").trim().replace(/,/g, "");
    if (!/^\d+(\.\d{1,2})?$/.test(value)) {
      return null;
    }
    var parts = value.split(".");
    return parseInt(parts[0], 10) * 100 + (parts[1] ? parseInt((parts[1] + "0").slice(0, 2), 10) : 0);
  }

  function money(totalCents) {
    var yuan = Math.floor(totalCents / 100);
    var rest = String(totalCents % 100);
    return "¥" + String(yuan).replace(/\B(?=(\d{3})+(?!\d))/g, ",") + "." + (rest.length < 2 ? "0" + rest : rest);
  }

  function field(row, name) {
    return row.querySelector('[data-item="' + name + '"]');
  }

  function recompute() {
    var total = 0;
    rows().forEach(function (row) {
      if (!field(row, "description").value.trim()) {
        return;
      }
      var quantity = String(field(row, "quantity").value || "").trim();
      var price = cents(field(row, "unit_price").value);
      if (/^\d+$/.test(quantity) && price !== null) {
        total += price * parseInt(quantity, 10);
      }
    });
    output.textContent = money(total);
  }

  // Each row's labels and drop button say its number: renumbered after a row comes or goes.
  function renumber() {
    var all = rows();
    all.forEach(function (row, position) {
      row.querySelectorAll("[data-row-label], [data-drop-row]").forEach(function (element) {
        element.textContent = element.textContent.replace(/\d+/, String(position + 1));
      });
      var drop = row.querySelector("[data-drop-row]");
      if (drop) {
        drop.setAttribute("data-testid", "drop-row-" + (position + 1));
      }
    });
    if (addButton) {
      addButton.disabled = all.length >= maxRows;
    }
  }

  function clear(row) {
    row.querySelectorAll("input").forEach(function (input) {
      input.value = input.getAttribute("data-item") === "quantity" ? "1" : "";
      input.removeAttribute("aria-invalid");
    });
    row.querySelectorAll(".field-error").forEach(function (error) {
      error.remove();
    });
    row.querySelectorAll(".field-invalid").forEach(function (cell) {
      cell.classList.remove("field-invalid");
    });
  }

  if (addButton) {
    addButton.addEventListener("click", function (event) {
      event.preventDefault();
      var all = rows();
      if (all.length === 0 || all.length >= maxRows) {
        return;
      }
      var last = all[all.length - 1];
      var next = Math.max.apply(null, all.map(indexOf)) + 1;
      var copy = last.cloneNode(true);
      var from = "-" + indexOf(last) + "-";
      var to = "-" + next + "-";
      copy.querySelectorAll("[id], [name], [for]").forEach(function (element) {
        ["id", "name", "for"].forEach(function (attribute) {
          var value = element.getAttribute(attribute);
          if (value) {
            element.setAttribute(attribute, value.replace(from, to));
          }
        });
      });
      var drop = copy.querySelector("[data-drop-row]");
      if (drop) {
        drop.value = String(next);
      }
      clear(copy);
      body.appendChild(copy);
      renumber();
      recompute();
      field(copy, "description").focus();
    });
  }

  body.addEventListener("click", function (event) {
    var drop = event.target.closest("[data-drop-row]");
    if (!drop) {
      return;
    }
    event.preventDefault();
    var row = drop.closest("tr");
    if (rows().length > 1) {
      row.remove();
    } else {
      clear(row);
    }
    renumber();
    recompute();
  });

  body.addEventListener("input", recompute);
  recompute();
})();
