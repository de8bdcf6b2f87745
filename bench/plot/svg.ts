// The pieces every sluice plot is made of (hand-written SVG, no dependencies): the
// document with its white background and title, grid steps, the colour palette, legend
// entries and escaped text. The trace simulator's plot (bench/simulate/report.ts) and the
// demo's timeline (demo/picture.ts) draw with them.

/** Okabe-Ito colours: told apart with every common colour-vision deficiency. */
export const OKABE_ITO = {
  vermillion: '#D55E00',
  blue: '#0072B2',
  green: '#009E73',
  purple: '#CC79A7',
  orange: '#E69F00',
  grey: '#999999',
  skyBlue: '#56B4E9',
  black: '#000000',
  yellow: '#F0E442',
} as const;

/** Text for an SVG text node or attribute. */
export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Grid step for a range: 1, 2 or 5 times a power of ten, about `lines` lines (4). */
export function gridStep(range: number, lines = 4): number {
  const raw = range / lines;
  const p = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw)!;
}

/** The opening of a plot: the svg element, a white background (dark viewers) and the title centred on top. */
export function svgOpen(width: number, height: number, title: string, fontSize = 11): string[] {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="${fontSize}">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="16" text-anchor="middle" font-size="${fontSize + 2}">${escapeXml(title)}</text>`,
  ];
}

/** The closing tag, joined into one document. */
export function svgClose(parts: readonly string[]): string {
  return `${[...parts, '</svg>'].join('\n')}\n`;
}

/** One legend entry at (x, y): a short line (or a filled box) in `color`, then the label. */
export function legendEntry(x: number, y: number, color: string, label: string, mark: 'line' | 'box' = 'line'): string {
  const sample =
    mark === 'line'
      ? `<line x1="${x}" x2="${x + 24}" y1="${y}" y2="${y}" stroke="${color}" stroke-width="3"/>`
      : `<rect x="${x + 4}" y="${y - 6}" width="16" height="12" fill="${color}"/>`;
  return `${sample}\n<text x="${x + 30}" y="${y + 4}">${escapeXml(label)}</text>`;
}
