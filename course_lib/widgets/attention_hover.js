// Front end of AttentionHover. Python syncs the sentence's tokens and the attention weights of every
// layer and head as bytes (weight * 255, layout [layer][head][query][key]); everything the learner
// does here (hover, lock, layer, head, ignore the first token) is drawn from those bytes at once.

const DEBOUNCE_MS = 400; // one forward pass per pause in typing, not one per key
const TOP_SHOWN = 3; // tokens named in the readout line

function element(tag, className, text) {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function quoted(label) {
  return `“${label}”`;
}

function percent(share) {
  return `${(100 * share).toFixed(share < 0.1 ? 1 : 0)}%`;
}

/** The synced `weights` as a Uint8Array (anywidget hands binary traits over as a DataView). */
export function asBytes(value) {
  if (!value) return new Uint8Array(0);
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  return new Uint8Array(value);
}

/** How much the token at `query` attends to each token 0..query: a plain array of weights in 0..1,
 * of one head, or the average over heads when `head` is -1. */
export function attentionRow(bytes, nHeads, nTokens, layer, head, query) {
  const heads = head < 0 ? [...Array(nHeads).keys()] : [head];
  const row = new Array(query + 1).fill(0);
  for (const h of heads) {
    const start = ((layer * nHeads + h) * nTokens + query) * nTokens;
    for (let key = 0; key <= query; key++) row[key] += bytes[start + key] / 255 / heads.length;
  }
  return row;
}

/** The earlier tokens (and the query itself) as shown: {position, share}, where with `ignoreFirst`
 * token 0 is left out and the other shares are rescaled to sum to 1. */
export function shownShares(row, ignoreFirst) {
  const shares = row.map((share, position) => ({ position, share }));
  if (!ignoreFirst) return shares;
  const rest = shares.slice(1);
  const total = rest.reduce((sum, { share }) => sum + share, 0);
  return rest.map(({ position, share }) => ({ position, share: total > 0 ? share / total : 0 }));
}

export default {
  render({ model, el }) {
    el.classList.add("ah");
    // Keep keys from reaching notebook shortcuts: typing "a" must not insert a cell, and the arrow
    // keys on the layer slider must not move to another cell.
    el.addEventListener("keydown", (event) => event.stopPropagation());

    const input = element("input", "ah-input");
    input.type = "text";
    input.placeholder = "Type a sentence, e.g. The trophy did not fit in the suitcase because it was too big.";
    input.spellcheck = false;
    input.setAttribute("data-lm-suppress-shortcuts", "true");

    const layerSlider = element("input", "ah-layer");
    layerSlider.type = "range";
    layerSlider.min = "0";
    const layerNumber = element("input", "ah-layer-number");
    layerNumber.type = "number";
    layerNumber.min = "0";
    const headSelect = element("select", "ah-head");
    const ignoreFirst = element("input", "ah-ignore-first");
    ignoreFirst.type = "checkbox";
    const layerControl = element("label", "ah-control", "layer");
    layerControl.append(layerSlider, layerNumber);
    const headControl = element("label", "ah-control", "head");
    headControl.append(headSelect);
    const ignoreControl = element("label", "ah-control");
    ignoreControl.append(ignoreFirst, "ignore the first token (an “attention sink”)");
    const controls = element("div", "ah-controls");
    controls.append(layerControl, headControl, ignoreControl);

    const notice = element("div", "ah-notice");
    const error = element("div", "ah-error");
    const chips = element("div", "ah-chips");
    const readout = element("div", "ah-readout");
    const legend = element("div", "ah-legend");
    legend.append(
      element("span", "ah-swatch"),
      " colour strength: weight ÷ the largest weight among the earlier tokens · " +
        "greyed: later tokens, which a token cannot look at · click or tap to lock a token",
    );
    el.append(input, controls, notice, error, chips, readout, legend);

    let hovered = -1; // the token under the pointer (or keyboard focus), -1 for none
    let pendingSend = null;

    const save = (name, value) => {
      model.set(name, value);
      model.save_changes();
    };
    const sendText = () => {
      clearTimeout(pendingSend);
      if (input.value !== model.get("text")) save("text", input.value);
    };
    input.addEventListener("input", () => {
      clearTimeout(pendingSend);
      pendingSend = setTimeout(sendText, DEBOUNCE_MS);
    });
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter") sendText();
    });

    const chooseLayer = (value) => {
      const layer = Math.round(Number(value));
      const last = model.get("n_layers") - 1;
      // A typed number outside the range is pulled into it rather than dropped.
      save("layer", Number.isFinite(layer) ? Math.min(Math.max(layer, 0), last) : model.get("layer"));
      showLayer(); // also when the layer stayed the same, so the box no longer shows what was typed
    };
    layerSlider.addEventListener("input", () => chooseLayer(layerSlider.value));
    layerNumber.addEventListener("change", () => chooseLayer(layerNumber.value));
    headSelect.addEventListener("change", () => save("head", Number(headSelect.value)));
    ignoreFirst.addEventListener("change", () => save("ignore_first", ignoreFirst.checked));

    // One set of listeners on the chip row: chips are rebuilt with every new sentence.
    const chipPosition = (event) => {
      const chip = event.target.closest(".ah-chip");
      return chip ? Number(chip.dataset.position) : -1;
    };
    const hover = (position) => {
      if (position === hovered) return;
      hovered = position;
      draw();
    };
    const toggleLock = (position) => {
      if (position >= 0) save("locked", model.get("locked") === position ? -1 : position);
    };
    // The gaps between chips keep the last hovered token, so sliding across a row does not flicker.
    const hoverChip = (event) => {
      if (chipPosition(event) >= 0) hover(chipPosition(event));
    };
    chips.addEventListener("pointerover", hoverChip);
    chips.addEventListener("focusin", hoverChip);
    chips.addEventListener("pointerleave", () => hover(-1));
    chips.addEventListener("focusout", () => hover(-1));
    // A tap on a touch screen arrives as a click too, so tapping locks (and tapping again unlocks).
    chips.addEventListener("click", (event) => toggleLock(chipPosition(event)));
    chips.addEventListener("keydown", (event) => {
      if (event.key !== "Enter" && event.key !== " ") return;
      event.preventDefault();
      toggleLock(chipPosition(event));
    });

    const showText = () => {
      if (input.value !== model.get("text")) input.value = model.get("text");
    };
    const showMessages = () => {
      notice.textContent = model.get("notice");
      notice.hidden = !model.get("notice");
      error.textContent = model.get("error");
      error.hidden = !model.get("error");
    };
    const showLayer = () => {
      const last = Math.max(model.get("n_layers") - 1, 0);
      layerSlider.max = layerNumber.max = String(last);
      layerSlider.value = layerNumber.value = String(model.get("layer"));
    };
    const showHeads = () => {
      const nHeads = model.get("n_heads");
      const options = [element("option", "", `average of ${nHeads} heads`)];
      options[0].value = "-1";
      for (let head = 0; head < nHeads; head++) {
        const option = element("option", "", `head ${head}`);
        option.value = String(head);
        options.push(option);
      }
      headSelect.replaceChildren(...options);
      headSelect.value = String(model.get("head"));
    };
    const showTokens = () => {
      hovered = -1;
      chips.replaceChildren(
        ...model.get("tokens").map((label, position) => {
          const chip = element("span", "ah-chip", label);
          chip.dataset.position = String(position);
          chip.tabIndex = 0;
          return chip;
        }),
      );
      draw();
    };

    function draw() {
      const tokens = model.get("tokens");
      const nLayers = model.get("n_layers");
      const nHeads = model.get("n_heads");
      const layer = model.get("layer");
      const head = model.get("head");
      // A lock sent just before a shorter sentence arrived can point past its end: no lock then.
      const locked = model.get("locked") < tokens.length ? model.get("locked") : -1;
      const ignoring = model.get("ignore_first");
      const bytes = asBytes(model.get("weights"));
      const nTokens = tokens.length;
      const complete = nTokens > 0 && bytes.length === nLayers * nHeads * nTokens * nTokens;
      const focus = !complete ? -1 : locked >= 0 ? locked : hovered;

      const row = focus >= 0 ? attentionRow(bytes, nHeads, nTokens, layer, head, focus) : [];
      const shown = shownShares(row, ignoring);
      const largest = Math.max(0, ...shown.map(({ share }) => share));
      const shareOf = new Map(shown.map(({ position, share }) => [position, share]));
      const looker = focus >= 0 ? quoted(tokens[focus]) : "";

      chips.querySelectorAll(".ah-chip").forEach((chip, position) => {
        const label = quoted(tokens[position]);
        const share = shareOf.get(position);
        chip.classList.toggle("ah-focus", position === focus);
        chip.classList.toggle("ah-locked", position === focus && position === locked);
        chip.classList.toggle("ah-future", focus >= 0 && position > focus);
        chip.classList.toggle("ah-ignored", focus >= 0 && ignoring && position === 0);
        if (share === undefined) chip.style.removeProperty("--ah-strength");
        else chip.style.setProperty("--ah-strength", largest > 0 ? (share / largest).toFixed(3) : "0");
        let title = `${label} (token ${position})`;
        if (focus < 0) title += "\nhover or tap to see what it attends to";
        else if (position > focus) title += `\nlater than ${looker}: a token cannot look ahead`;
        else if (share === undefined) title += `\nleft out; its real weight from ${looker}: ${percent(row[0])}`;
        else if (ignoring) title += `\nweight from ${looker}: ${percent(share)} of what the first token leaves`;
        else title += `\nweight from ${looker}: ${percent(share)}`;
        chip.title = title;
      });

      if (focus < 0) {
        const hint = "Hover over a token, or tap it, to see which earlier tokens it looks at.";
        readout.textContent = nTokens > 0 ? hint : "";
        return;
      }
      const where = `(layer ${layer}, ${head < 0 ? `average of ${nHeads} heads` : `head ${head}`})`;
      let line;
      if (shown.length === 0) {
        line = `${looker} ${where} is the first token, which is ignored: there is nothing left to show.`;
      } else {
        const top = [...shown].sort((a, b) => b.share - a.share).slice(0, TOP_SHOWN);
        line = `${looker} ${where} looks most at: ` +
          top.map(({ position, share }) => `${quoted(tokens[position])} ${percent(share)}`).join(", ");
        if (ignoring) {
          line += ` (the first token ${quoted(tokens[0])} takes ${percent(row[0])} and is left out; ` +
            "the rest are rescaled to add up to 100%)";
        }
      }
      if (focus === locked) line += " · locked: click it again to unlock";
      readout.textContent = line;
    }

    const redrawOn = {
      "change:text": showText,
      "change:notice change:error": showMessages,
      "change:n_layers change:layer": () => { showLayer(); draw(); },
      "change:n_heads change:head": () => { showHeads(); draw(); },
      "change:ignore_first": () => { ignoreFirst.checked = model.get("ignore_first"); draw(); },
      "change:tokens change:weights": showTokens,
      "change:locked": draw,
    };
    showText();
    showMessages();
    showLayer();
    showHeads();
    ignoreFirst.checked = model.get("ignore_first");
    showTokens();
    for (const [events, handler] of Object.entries(redrawOn)) model.on(events, handler);
    return () => {
      clearTimeout(pendingSend);
      for (const [events, handler] of Object.entries(redrawOn)) model.off(events, handler);
    };
  },
};
