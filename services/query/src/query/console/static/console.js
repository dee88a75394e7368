// Search as you type: the results part of the page is fetched and swapped in, the URL kept in step.
// Without this script the search form still works as a plain GET form.
"use strict";
(function () {
  const form = document.querySelector("form[data-live-search]");
  const results = document.getElementById("results");
  if (!form || !results) return;
  const input = form.querySelector('input[type="search"]');
  let pending = null;
  let timer = 0;

  async function refresh() {
    const params = new URLSearchParams(new FormData(form));
    if (pending) pending.abort();
    pending = new AbortController();
    try {
      const response = await fetch(form.dataset.liveSearch + "?" + params.toString(), {
        headers: { "X-Console-Fragment": "1" },
        credentials: "same-origin",
        signal: pending.signal,
      });
      if (response.status === 401) {
        window.location.assign(response.headers.get("X-Console-Sign-In") || "/console/sign-in");
        return;
      }
      results.innerHTML = await response.text(); // server-rendered and escaped
      window.history.replaceState(null, "", form.action + "?" + params.toString());
    } catch (error) {
      if (error.name !== "AbortError") throw error;
    }
  }

  input.addEventListener("input", function () {
    window.clearTimeout(timer);
    timer = window.setTimeout(refresh, 150);
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    window.clearTimeout(timer);
    refresh();
  });
})();
