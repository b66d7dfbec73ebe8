// Enhances the form: answers appear as you type (debounced) and the URL stays shareable.
// Without JavaScript the form submits and the server renders the same answer.
(function () {
  "use strict";
  var form = document.getElementById("ask");
  var input = document.getElementById("q");
  var answer = document.getElementById("answer");
  if (!form || !input || !answer || !window.fetch) { return; }
  var timer = null;
  var asked = input.value;
  function ask(q, push) {
    if (!q.trim() || q === asked) { return; }
    asked = q;
    fetch("/?q=" + encodeURIComponent(q), { headers: { "X-Fits-Partial": "1" } })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        if (asked !== q) { return; }
        answer.innerHTML = html;
        if (push) { history.pushState({ q: q }, "", "/?q=" + encodeURIComponent(q)); }
      });
  }
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    asked = "";
    ask(input.value, true);
  });
  input.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(function () { ask(input.value, true); }, 500);
  });
  var parts = document.getElementById("fields");
  if (parts) {
    parts.addEventListener("submit", function (e) {
      e.preventDefault();
      var words = [];
      var model = parts.elements.model.value.trim();
      if (!model) { return; }
      words.push(model);
      if (parts.elements.quant.value) { words.push(parts.elements.quant.value); }
      ["gpu", "ctx", "engine", "batch", "train"].forEach(function (key) {
        var value = parts.elements[key].value.trim();
        if (value) { words.push(key + "=" + (value.indexOf(" ") >= 0 ? '"' + value + '"' : value)); }
      });
      input.value = words.join(" ");
      asked = "";
      ask(input.value, true);
    });
  }
  window.addEventListener("popstate", function (e) {
    if (e.state && e.state.q) { input.value = e.state.q; asked = ""; ask(e.state.q, false); }
  });
})();
