// Behaviour of console pages, kept out of the markup: the Content-Security-Policy runs no inline script.
// Delegated from the document, so it also works in fragments htmx swaps in.

// <input type="checkbox" data-select-all="ids">: checks or clears every checkbox named "ids".
document.addEventListener("change", (event) => {
  const name = event.target.dataset && event.target.dataset.selectAll;
  if (!name) return;
  document.querySelectorAll(`input[type=checkbox][name="${name}"]`).forEach((box) => {
    box.checked = event.target.checked;
  });
});

// <a data-back href="...">: back to the previous page when there is one, else the link's own target.
document.addEventListener("click", (event) => {
  const link = event.target.closest && event.target.closest("a[data-back]");
  if (link && window.history.length > 1) {
    event.preventDefault();
    window.history.back();
  }
});
