// The live tail: one EventSource on the stream URL the page names. The browser
// reconnects by itself after a lost connection and sends the last event id it saw
// (Last-Event-ID); the server resumes right after it, so nothing repeats or goes
// missing. Entries are built with textContent only: event data is never markup.
(function () {
  "use strict";
  var list = document.getElementById("tail");
  var status = document.getElementById("tail-status");
  var KEEP = 500;
  if (!list || !status) return;
  if (!window.EventSource) {
    status.textContent = "This browser cannot follow events live.";
    return;
  }

  function say(text) {
    if (status.textContent !== text) status.textContent = text;
  }

  function span(className, text) {
    var node = document.createElement("span");
    node.className = className;
    node.textContent = text;
    return node;
  }

  function entry(event) {
    var item = document.createElement("li");
    item.dataset.seq = String(event.seq);
    item.dataset.type = event.type;
    item.appendChild(span("seq", "#" + event.seq));
    var time = document.createElement("time");
    time.dateTime = event.at;
    time.textContent = event.at.replace("T", " ").replace(/\.\d+Z$/, " UTC");
    item.appendChild(time);
    item.appendChild(span("type", event.type));
    item.appendChild(span("summary", event.summary));
    if (event.url) {
      var link = document.createElement("a");
      link.href = event.url;
      link.textContent = "conversation";
      item.appendChild(link);
    }
    return item;
  }

  var source = new EventSource(list.dataset.streamUrl);
  source.addEventListener("open", function () {
    say("Connected; reading what happened before…");
  });
  source.addEventListener("caught-up", function () {
    say("Live: new events appear at the end of the list.");
  });
  source.addEventListener("message", function (message) {
    list.appendChild(entry(JSON.parse(message.data)));
    while (list.children.length > KEEP) list.removeChild(list.firstElementChild);
  });
  source.addEventListener("error", function () {
    if (source.readyState === EventSource.CLOSED) {
      say("Stopped: the session ended or the identity is gone. Reload the page to sign in again.");
    } else {
      say("Connection lost; reconnecting…");
    }
  });
})();
