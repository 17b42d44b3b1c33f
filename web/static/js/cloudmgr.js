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
})();
