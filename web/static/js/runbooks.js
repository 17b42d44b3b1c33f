// Live runbook events: a table marked data-runbook-events polls its JSON URL while the run is
// queued or running and appends the new events.  Without JavaScript the page shows the events
// stored when it was rendered (reload to see more).
(function () {
  "use strict";
  var POLL_MS = 2000;

  function cell(row, text, className) {
    var td = document.createElement("td");
    if (className) {
      td.className = className;
    }
    td.textContent = text || "";
    row.appendChild(td);
    return td;
  }

  function eventRow(e) {
    var row = document.createElement("tr");
    row.className = "runbook-event runbook-event-" + (e.status || "info");
    row.setAttribute("data-event-id", String(e.id));
    var when = e.created_at ? new Date(e.created_at) : null;
    // In the zone the server shows times in (<body data-time-zone>), not the browser's own.
    var zone = document.body.getAttribute("data-time-zone") || undefined;
    cell(row, when ? when.toLocaleTimeString("en-GB", { timeZone: zone, hour12: false }) : "");
    cell(row, e.host);
    var what = cell(row, "");
    if (e.event === "playbook_on_play_start") {
      var strong = document.createElement("strong");
      strong.textContent = e.play || "";
      what.appendChild(strong);
    } else {
      what.textContent = e.event === "playbook_on_stats" ? "∑" : (e.task || "");
    }
    cell(row, e.status);
    cell(row, e.message, "runbook-message");
    return row;
  }

  function follow(table) {
    var url = table.getAttribute("data-runbook-events");
    var tbody = table.querySelector("tbody");
    function poll() {
      var after = table.getAttribute("data-after") || "0";
      fetch(url + "?after=" + encodeURIComponent(after), { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) {
            throw new Error("HTTP " + response.status);
          }
          return response.json();
        })
        .then(function (data) {
          data.items.forEach(function (e) {
            tbody.appendChild(eventRow(e));
            table.setAttribute("data-after", String(e.id));
          });
          var active = data.run.state === "queued" || data.run.state === "running";
          table.setAttribute("data-active", active ? "true" : "false");
          if (active) {
            window.setTimeout(poll, POLL_MS);
          } else {
            table.setAttribute("data-finished", data.run.state);
          }
        })
        .catch(function () {
          window.setTimeout(poll, POLL_MS * 3);
        });
    }
    poll();
  }

  document.querySelectorAll("table[data-runbook-events]").forEach(function (table) {
    if (table.getAttribute("data-active") === "true") {
      follow(table);
    }
  });
})();
