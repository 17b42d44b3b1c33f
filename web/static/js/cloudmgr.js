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
})();
