// Front end of TokenizerBox. Python does all the tokenizing and syncs `rows` and `notice`;
// this file draws them and sends the learner's text back.

const DEBOUNCE_MS = 150;
// Pastel chip backgrounds, alternated so neighbouring tokens are easy to tell apart.
const CHIP_COLOURS = ["#ffd6d6", "#d6ecff", "#d9f5d6", "#fff0c2", "#ead9ff", "#ffe0c7"];

function element(tag, className, text) {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function plural(count, word) {
  return `${count.toLocaleString()} ${word}${count === 1 ? "" : "s"}`;
}

function tokenChip(token, index) {
  const chip = element("span", "tokbox-chip");
  chip.style.background = CHIP_COLOURS[index % CHIP_COLOURS.length];
  chip.title = `${token.piece}\nid ${token.id}\nUTF-8 bytes (hex): ${token.hex}`;
  chip.append(element("span", "tokbox-piece", token.piece), element("span", "tokbox-id", String(token.id)));
  return chip;
}

function tokenRow(row) {
  const rowNode = element("div", "tokbox-row");
  const header = element("div", "tokbox-header");
  header.append(element("span", "tokbox-name", row.name));
  if (row.error) {
    rowNode.append(header, element("div", "tokbox-error", row.error));
    return rowNode;
  }
  const counts = [
    plural(row.n_tokens, "token"),
    plural(row.n_chars, "character"),
    plural(row.n_bytes, "byte"),
  ];
  header.append(element("span", "tokbox-counts", counts.join(" · ")));
  const chips = element("div", "tokbox-chips");
  chips.append(...row.tokens.map(tokenChip));
  rowNode.append(header, chips);
  return rowNode;
}

export default {
  render({ model, el }) {
    el.classList.add("tokbox");
    const input = element("textarea", "tokbox-input");
    input.rows = 3;
    input.placeholder = "Type or paste any text: English, emoji, 中文, العربية…";
    input.spellcheck = false;
    // Keep keystrokes from reaching notebook shortcuts (typing "a" must not insert a cell).
    input.setAttribute("data-lm-suppress-shortcuts", "true");
    input.addEventListener("keydown", (event) => event.stopPropagation());
    const notice = element("div", "tokbox-notice");
    const rows = element("div", "tokbox-rows");
    el.append(input, notice, rows);

    let pendingSend = null;
    input.addEventListener("input", () => {
      // Wait for a pause in typing so Python tokenizes once per burst, not once per key.
      clearTimeout(pendingSend);
      pendingSend = setTimeout(() => {
        model.set("text", input.value);
        model.save_changes();
      }, DEBOUNCE_MS);
    });

    const showText = () => {
      if (input.value !== model.get("text")) input.value = model.get("text");
    };
    const showNotice = () => {
      notice.textContent = model.get("notice");
      notice.hidden = !model.get("notice");
    };
    const showRows = () => rows.replaceChildren(...model.get("rows").map(tokenRow));

    showText();
    showNotice();
    showRows();
    model.on("change:text", showText);
    model.on("change:notice", showNotice);
    model.on("change:rows", showRows);
    return () => {
      clearTimeout(pendingSend);
      model.off("change:text", showText);
      model.off("change:notice", showNotice);
      model.off("change:rows", showRows);
    };
  },
};
