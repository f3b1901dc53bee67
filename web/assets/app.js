// otgate's own script: no inline scripts anywhere (the Content-Security-Policy forbids them).
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // Forms submit once: a second click while the first is in flight does nothing.
  for (const form of document.querySelectorAll("form")) {
    form.addEventListener("submit", () => {
      for (const button of form.querySelectorAll("button")) button.disabled = true;
    });
  }
});
