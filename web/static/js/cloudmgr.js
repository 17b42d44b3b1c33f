// Small enhancements only: every page works without JavaScript.
(function () {
  "use strict";
  // A select marked data-autosubmit submits its (GET) form when changed.
  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () {
      if (select.value && select.form) {
        select.form.submit();
      }
    });
  });
  // A search box marked data-filter-select="<select id>" is shown and narrows that select's
  // options to those whose text or data-search holds what is typed (the page works without it).
  document.querySelectorAll("input[data-filter-select]").forEach(function (input) {
    var select = document.getElementById(input.getAttribute("data-filter-select"));
    if (!select) {
      return;
    }
    input.hidden = false;
    input.addEventListener("input", function () {
      var wanted = input.value.trim().toLowerCase();
      var first = null;
      Array.prototype.forEach.call(select.options, function (option) {
        if (!option.value) {
          return;
        }
        var text = (option.text + " " + (option.getAttribute("data-search") || "")).toLowerCase();
        option.hidden = wanted !== "" && text.indexOf(wanted) === -1;
        if (!option.hidden && first === null) {
          first = option;
        }
      });
      var chosen = select.options[select.selectedIndex];
      if (first && (!chosen || chosen.hidden || !chosen.value)) {
        select.value = first.value;
      }
    });
  });
  // The menu's groups (<details> in .main-nav) work without the script; with it, opening one
  // closes the others, and a click elsewhere or Escape closes it.
  var groups = document.querySelectorAll(".main-nav details[data-nav-group]");
  groups.forEach(function (group) {
    group.addEventListener("toggle", function () {
      if (group.open) {
        groups.forEach(function (other) {
          if (other !== group) {
            other.open = false;
          }
        });
      }
    });
  });
  document.addEventListener("click", function (event) {
    groups.forEach(function (group) {
      if (group.open && !group.contains(event.target)) {
        group.open = false;
      }
    });
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") {
      return;
    }
    groups.forEach(function (group) {
      if (group.open) {
        group.open = false;
        group.querySelector("summary").focus();
      }
    });
  });
  // A table wider than its .table-wrap scrolls inside it; the wrapper then takes keyboard
  // focus (arrow keys scroll it) and is a region named after the table's caption or the
  // section's heading. Checked again when the window changes size and when a live region
  // (live.js) brings new rows.
  function scrollableTables() {
    document.querySelectorAll(".table-wrap").forEach(function (wrap) {
      if (wrap.scrollWidth > wrap.clientWidth) {
        if (!wrap.hasAttribute("tabindex")) {
          wrap.setAttribute("tabindex", "0");
          wrap.setAttribute("data-scroll-focus", "");
          var caption = wrap.querySelector("caption");
          var section = wrap.closest("section, .panel");
          var heading = section && section.querySelector("h2, h3");
          var name = (caption || heading || {}).textContent;
          if (name && name.trim()) {
            wrap.setAttribute("role", "region");
            wrap.setAttribute("aria-label", name.trim());
          }
        }
      } else if (wrap.hasAttribute("data-scroll-focus")) {
        ["tabindex", "data-scroll-focus", "role", "aria-label"].forEach(function (attribute) {
          wrap.removeAttribute(attribute);
        });
      }
    });
  }
  var tablesCheck = null;
  function checkTablesSoon() {
    if (tablesCheck === null) {
      tablesCheck = window.requestAnimationFrame(function () {
        tablesCheck = null;
        scrollableTables();
      });
    }
  }
  scrollableTables();
  window.addEventListener("resize", checkTablesSoon);
  new MutationObserver(checkTablesSoon).observe(document.body, { childList: true, subtree: true });
  // A destructive action (cancel, withdraw, stop, delete, reject, revert) carries
  // data-confirm="<what will happen>" on its form, or on its button when the form has others;
  // the browser asks before it is sent. Listening in the capture phase, a "no" stops the
  // submission before any other handler sees it. Without the script the page's own wording
  // beside the button says the same.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var submitter = event.submitter;
    var message = (submitter && submitter.getAttribute("data-confirm")) || form.getAttribute("data-confirm");
    if (message && !window.confirm(message)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);
})();
