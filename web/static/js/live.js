// Live pages (no library): while work is in flight the page follows it without a reload, and a
// long action says it is working.  Every page works without JavaScript (reload to see more).
//
// An element marked data-live with an id is the part of the page that changes while work is in
// flight; data-live-active="true" says something is in flight now.  While one is active the page
// fetches its own address every few seconds (the same route, so the same login and department
// walls) and puts in each live element the server's new rendering of it; it stops when the new
// rendering has nothing in flight.  A live element the user is typing in is left alone until the
// user leaves it.
//
// A form marked data-busy="<text>" disables its buttons once submitted and shows the text (a long
// action: the planner upload, an inventory import, a quota apply), so it is neither submitted twice
// nor mistaken for a page that does nothing.
(function () {
  "use strict";
  var POLL_MS = parseInt(document.documentElement.getAttribute("data-live-poll-ms") || "3000", 10);

  function anyActive(root) {
    return root.querySelector("[data-live][data-live-active='true']") !== null;
  }

  function withoutTokens(html) {
    // A fresh rendering carries a fresh CSRF token: not a change the user needs to see.
    return html.replace(/name="csrf_token"[^>]*>/g, "");
  }

  function editing(region) {
    if (region.getAttribute("data-live-dirty") === "true") {
      return true;
    }
    var focused = document.activeElement;
    return !!focused && region.contains(focused) && /^(INPUT|TEXTAREA|SELECT)$/.test(focused.tagName);
  }

  function watchTyping(region) {
    region.addEventListener("input", function () {
      region.setAttribute("data-live-dirty", "true");
    });
  }

  var timer = null;
  var failures = 0;

  function schedule(ms) {
    window.clearTimeout(timer);
    timer = window.setTimeout(poll, ms);
  }

  function poll() {
    fetch(window.location.href, {
      credentials: "same-origin",
      cache: "no-store",
      headers: { Accept: "text/html", "X-Cloudmgr-Live": "1" },
    })
      .then(function (response) {
        if (response.redirected || response.status === 401 || response.status === 403 || response.status === 404) {
          return null; // logged out, or no longer this user's to see: stop following
        }
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.text();
      })
      .then(function (text) {
        if (text === null) {
          return;
        }
        failures = 0;
        var fresh = new DOMParser().parseFromString(text, "text/html");
        document.querySelectorAll("[data-live][id]").forEach(function (region) {
          var next = fresh.getElementById(region.id);
          if (!next || editing(region)) {
            return;
          }
          if (withoutTokens(next.outerHTML) !== withoutTokens(region.outerHTML)) {
            var replacement = document.importNode(next, true);
            region.replaceWith(replacement);
            watchTyping(replacement);
          }
        });
        if (anyActive(document)) {
          schedule(POLL_MS);
        }
      })
      .catch(function () {
        failures += 1;
        schedule(POLL_MS * Math.min(10, 1 + failures));
      });
  }

  document.querySelectorAll("[data-live][id]").forEach(watchTyping);
  if (anyActive(document)) {
    schedule(POLL_MS);
  }

  // Long actions: say the work is under way and do not let it be submitted twice.
  function reset(form) {
    form.removeAttribute("data-busy-submitted");
    form.querySelectorAll("button, input[type=submit]").forEach(function (button) {
      button.disabled = false;
      button.removeAttribute("aria-disabled");
    });
    var note = form.querySelector(".busy-note");
    if (note) {
      note.remove();
    }
  }

  document.querySelectorAll("form[data-busy]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (form.getAttribute("data-busy-submitted") === "true") {
        event.preventDefault();
        return;
      }
      form.setAttribute("data-busy-submitted", "true");
      // After the browser has taken the form's values (a disabled button's name would be left out).
      window.setTimeout(function () {
        form.querySelectorAll("button, input[type=submit]").forEach(function (button) {
          button.disabled = true;
          button.setAttribute("aria-disabled", "true");
        });
        if (!form.querySelector(".busy-note")) {
          var note = document.createElement("p");
          note.className = "busy-note";
          note.setAttribute("role", "status");
          note.textContent = form.getAttribute("data-busy");
          form.appendChild(note);
        }
      }, 0);
    });
  });
  // Back to a page kept in the browser's cache: its forms can be used again.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) {
      document.querySelectorAll("form[data-busy]").forEach(reset);
    }
  });
})();
