"""Layout checks run inside a real browser page (Playwright): text that is clipped or overlapped,
and words that mean a value or a page broke ("nan", "None", an exception).

``problems(page)`` returns one line per problem. Two kinds of text are looked at:

- HTML text (headings, paragraphs, captions, labels, metric tiles, buttons): a text node's box
  must lie inside every ancestor that clips its overflow (e.g. "ace 1: The model says" when a
  picture pushes it out of its column), and must not cross another text node's box.
- Pictures (photos, video players) must lie inside the block that lays them out and cover no
  HTML text; the page itself must not be wider than the window (it would scroll sideways).
- Plotly's SVG text (titles, axis titles, tick labels, legend entries, point labels, slider
  labels): each must lie inside its figure, and must not cross another text of the same figure
  (subplot titles running together, an axis title on the slider row).

Streamlit's tables are drawn on a canvas: their cells are not text to the DOM and are checked
through the page's words only where Streamlit mirrors them for accessibility.
"""
from __future__ import annotations

# Runs in the page. Boxes are compared with a 2 px tolerance: anti-aliasing and sub-pixel layout
# make touching boxes overlap by a fraction of a pixel.
_SCRIPT = r"""
() => {
  const TOL = 2;
  const out = [];
  const visible = r => r.width > 0.5 && r.height > 0.5;
  const inter = (a, b) => Math.min(a.right, b.right) - Math.max(a.left, b.left) > TOL &&
                          Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > TOL;
  const outside = (r, c) => r.left < c.left - TOL || r.right > c.right + TOL ||
                            r.top < c.top - TOL || r.bottom > c.bottom + TOL;
  const shown = el => {
    for (let e = el; e && e.nodeType === 1; e = e.parentElement) {
      const s = getComputedStyle(e);
      if (s.display === 'none' || s.visibility === 'hidden' || Number(s.opacity) === 0) return false;
      // for screen readers only ("add icon"): clipped away to nothing
      if (/^rect\(0(px)?,? 0(px)?,? 0(px)?,? 0(px)?\)$/.test(s.clip) || s.clipPath === 'inset(50%)') return false;
      if (e.getAttribute('aria-hidden') === 'true' && !e.closest('svg')) return false;
      if (e.matches('[data-testid=stTooltipContent], [role=tooltip], details:not([open]) > :not(summary)')) return false;
    }
    return true;
  };
  const label = t => JSON.stringify(t.trim().slice(0, 60));
  // ---- HTML text
  const main = document.querySelector('[data-testid=stMain]') || document.body;
  const walker = document.createTreeWalker(main, NodeFilter.SHOW_TEXT);
  const boxes = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const text = n.textContent;
    if (!text.trim() || !n.parentElement || n.parentElement.closest('svg, .js-plotly-plot, canvas, [data-testid=stDataFrameResizable], textarea, input, [data-testid=stCode], pre, [data-baseweb=popover], iframe')) continue;
    if (!shown(n.parentElement)) continue;
    const range = document.createRange();
    range.selectNodeContents(n);
    const rects = [...range.getClientRects()].filter(visible);
    if (!rects.length) continue;
    // What is drawn of the text: its boxes cut to every container it may leave (by scrolling, or
    // shortened on purpose); overlaps are judged on these.
    let seen = rects.map(r => ({left: r.left, right: r.right, top: r.top, bottom: r.bottom}));
    for (let e = n.parentElement; e && e !== document.body; e = e.parentElement) {
      // the page's own scrolling containers: what lies below the window is reached by scrolling
      if (/^st(App|AppViewContainer|Main|MainBlockContainer)$/.test(e.dataset.testid || '')) break;
      const s = getComputedStyle(e);
      if (s.overflowX === 'visible' && s.overflowY === 'visible') continue;
      const c = e.getBoundingClientRect();
      const leavesX = seen.some(r => r.left < c.left - TOL || r.right > c.right + TOL);
      const leavesY = seen.some(r => r.top < c.top - TOL || r.bottom > c.bottom + TOL);
      // a scrolling container (a scrollable box, the chip row of a multiselect) shows everything by scrolling
      const scrollsX = /auto|scroll/.test(s.overflowX) && e.scrollWidth > e.clientWidth + 1;
      const scrollsY = /auto|scroll/.test(s.overflowY) && e.scrollHeight > e.clientHeight + 1;
      // a multiselect's chip shortens a long choice with an ellipsis and shows it whole on hover
      const chip = s.textOverflow === 'ellipsis' && e.closest('[data-testid=stMultiSelect]') &&
                   e.title.trim() === e.textContent.trim();
      if ((leavesX && !scrollsX && !chip) || (leavesY && !scrollsY)) {
        out.push(`clipped text ${label(text)} (its box leaves a ${e.tagName.toLowerCase()}` +
                 `${e.dataset.testid ? '[' + e.dataset.testid + ']' : ''} that hides its overflow)`);
        break;
      }
      seen = seen.map(r => ({left: Math.max(r.left, c.left), right: Math.min(r.right, c.right),
                             top: Math.max(r.top, c.top), bottom: Math.min(r.bottom, c.bottom)}))
                 .filter(r => r.right - r.left > 0.5 && r.bottom - r.top > 0.5);
    }
    seen.forEach(r => boxes.push({r, n, text}));
  }
  // Text cut with an ellipsis ("Best fitn…"): the box is inside its element, the text is not.
  main.querySelectorAll('*').forEach(e => {
    if (e.closest('svg, .js-plotly-plot, canvas, [data-testid=stDataFrameResizable], [data-baseweb=popover], input, textarea') || !shown(e)) return;
    const s = getComputedStyle(e);
    if (s.textOverflow === 'ellipsis' && e.scrollWidth > e.clientWidth + 1 && e.textContent.trim() &&
        !(e.closest('[data-testid=stMultiSelect]') && e.title.trim() === e.textContent.trim()))
      out.push(`text cut with an ellipsis ${label(e.textContent)}`);
  });
  for (let i = 0; i < boxes.length; i++)
    for (let j = i + 1; j < boxes.length; j++)
      if (boxes[i].n !== boxes[j].n && inter(boxes[i].r, boxes[j].r))
        out.push(`overlapping text ${label(boxes[i].text)} and ${label(boxes[j].text)}`);
  // ---- pictures (photos, videos): inside the block that lays them out, over no text
  main.querySelectorAll('img, video').forEach(m => {
    if (m.closest('svg, .js-plotly-plot, [data-baseweb=popover]') || !shown(m)) return;
    const r = m.getBoundingClientRect();
    if (!visible(r)) return;
    const name = `${m.tagName === 'VIDEO' ? 'a video' : 'a picture'} ${Math.round(r.width)}×${Math.round(r.height)} px`;
    const block = m.closest('[data-testid=stVerticalBlock]');
    if (block && outside(r, block.getBoundingClientRect()))
      out.push(`${name} leaves its block (${Math.round(block.getBoundingClientRect().width)} px wide)`);
    const covered = boxes.filter(b => inter(b.r, r));
    if (covered.length)
      out.push(`${name} covers the text ${label(covered[0].text)}` +
               (covered.length > 1 ? ` and ${covered.length - 1} more` : ''));
  });
  // the page itself wider than the window: it scrolls sideways and cuts what lies at its edges
  if (main.scrollWidth > main.clientWidth + TOL)
    out.push(`the page scrolls sideways: ${main.scrollWidth - main.clientWidth} px wider than the window`);
  // ---- plotly text, per figure
  document.querySelectorAll('.js-plotly-plot').forEach((plot, k) => {
    const svg = plot.querySelector('svg.main-svg');
    if (!svg || !shown(plot)) return;
    const frame = plot.getBoundingClientRect();
    const texts = [...plot.querySelectorAll('svg text')].filter(t => t.textContent.trim() && shown(t) &&
      !t.closest('.hoverlayer, .menulayer .dropdown, .updatemenu-dropdown-button-group'))
      .map(t => ({t, r: t.getBoundingClientRect()})).filter(x => visible(x.r));
    const title = plot.querySelector('.gtitle, .g-gtitle text');
    const name = title ? title.textContent.trim().slice(0, 40) : `figure ${k + 1}`;
    for (const {t, r} of texts)
      if (outside(r, frame)) out.push(`text ${label(t.textContent)} cut at the edge of ${name}`);
    for (let i = 0; i < texts.length; i++)
      for (let j = i + 1; j < texts.length; j++) {
        const a = texts[i].t, b = texts[j].t;
        if (a.contains(b) || b.contains(a)) continue;
        // plotly turns tick labels that would collide; their straight boxes overlap, their glyphs do not
        const turned = t => /rotate\((?!0[,)])/.test(t.getAttribute('transform') || '');
        if (turned(a) && turned(b)) continue;
        // one legend entry's pieces, or a multi-line label's lines, are one text
        if (a.closest('.legend') && b.closest('.legend') && a.closest('.traces') === b.closest('.traces')) continue;
        if (inter(texts[i].r, texts[j].r))
          out.push(`in ${name}: ${label(a.textContent)} overlaps ${label(b.textContent)}`);
      }
  });
  // ---- words that mean something broke
  const words = main.innerText;
  for (const m of words.matchAll(/(^|[^\w.])(nan|NaN|None|Traceback|Exception)(?![\w])/g)) {
    const at = m.index;
    out.push(`the page shows ${JSON.stringify(m[2])}: …${words.slice(Math.max(0, at - 50), at + 50).replace(/\s+/g, ' ')}…`);
  }
  if (document.querySelector('[data-testid=stException]')) out.push('the page shows an exception');
  return [...new Set(out)];
}
"""


def problems(page) -> list[str]:
    """Every clipped or overlapping text and every "nan", "None" or exception on ``page`` as it is now."""
    return page.evaluate(_SCRIPT)


def settle(page, timeout_ms: int = 120_000) -> None:
    """Wait until the page's script has drawn its title and finished running (no running icon, no
    skeleton), twice a second apart because a widget's first value can trigger one more run, then
    give plotly a moment to draw."""
    page.wait_for_selector("[data-testid=stMain] h1", timeout=timeout_ms)
    idle = ("() => !document.querySelector('[data-testid=stStatusWidgetRunningIcon], "
            "[data-testid=stStatusWidgetRunningManIcon], [data-testid=stSkeleton]')")
    for _ in range(2):
        page.wait_for_function(idle, timeout=timeout_ms)
        page.wait_for_timeout(700)
    page.wait_for_timeout(700)
