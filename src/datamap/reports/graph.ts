import type { AdequacyRegime } from '../../core/index.js';
import type { DataMap } from '../model.js';
import { escapeXml } from './escape-xml.js';
import { assessTransfers } from './transfers.js';

/** A node of the data-flow graph. */
export interface DataFlowNode {
  /** `organization`, `system:<key>`, `recipient:<name, lower case>`, `country:<code>`. */
  readonly id: string;
  readonly kind: 'organization' | 'system' | 'recipient' | 'country';
  readonly label: string;
  /** Residency of a system, country of a recipient, the code of a country node. */
  readonly country?: string;
  /** Keys of a system's datasets. */
  readonly datasets?: readonly string[];
}

/**
 * An edge of the data-flow graph.
 * - `operates`: the organization runs the system.
 * - `reference`: rows of `to` are found from values held in `from` (field references across systems).
 * - `recipient`: the system discloses data to the recipient.
 * - `transfer`: data goes to a country outside the exporter's area; the label names the mechanism and verdict.
 */
export interface DataFlowEdge {
  readonly from: string;
  readonly to: string;
  readonly kind: 'operates' | 'reference' | 'recipient' | 'transfer';
  readonly label?: string;
}

export interface DataFlowGraph {
  readonly nodes: readonly DataFlowNode[];
  readonly edges: readonly DataFlowEdge[];
}

export interface DataFlowGraphOptions {
  readonly regime?: AdequacyRegime;
}

const recipientId = (name: string) => `recipient:${name.trim().toLowerCase()}`;

/**
 * The data-flow view of a data map: the organization, its systems (with their datasets), recipients and the
 * countries data is transferred to. References between systems come from field references across datasets;
 * transfer edges from {@link assessTransfers} (declared transfers, and uncovered recipients or residencies
 * outside the area, labelled `no mechanism`). Nodes and edges in declaration order, without duplicates.
 */
export function buildDataFlowGraph(map: DataMap, options: DataFlowGraphOptions = {}): DataFlowGraph {
  const nodes = new Map<string, DataFlowNode>();
  const edges = new Map<string, DataFlowEdge>();
  const addNode = (n: DataFlowNode) => {
    if (!nodes.has(n.id)) nodes.set(n.id, n);
  };
  const addEdge = (e: DataFlowEdge) => {
    const k = `${e.kind}\u0000${e.from}\u0000${e.to}`;
    const old = edges.get(k);
    if (old === undefined) edges.set(k, e);
    else if (e.label !== undefined && old.label !== undefined && !old.label.split('; ').includes(e.label)) edges.set(k, { ...old, label: `${old.label}; ${e.label}` });
  };
  addNode({ id: 'organization', kind: 'organization', label: map.manifest.organization.name });
  for (const s of map.systems) {
    addNode({ id: `system:${s.key}`, kind: 'system', label: s.name, ...(s.residency === undefined ? {} : { country: s.residency.country }), datasets: s.datasets.map((d) => d.key) });
    addEdge({ from: 'organization', to: `system:${s.key}`, kind: 'operates' });
  }
  for (const s of map.systems) {
    for (const r of s.recipients) {
      addNode({ id: recipientId(r.name), kind: 'recipient', label: r.name, ...(r.country === undefined ? {} : { country: r.country }) });
      addEdge({ from: `system:${s.key}`, to: recipientId(r.name), kind: 'recipient', label: r.type });
    }
  }
  for (const e of map.referenceEdges()) {
    const from = map.field(e.from);
    const to = map.field(e.to);
    if (from === undefined || to === undefined || from.system.key === to.system.key) continue;
    addEdge({ from: `system:${from.system.key}`, to: `system:${to.system.key}`, kind: 'reference', label: `${from.dataset.key} → ${to.dataset.key}` });
  }
  for (const r of assessTransfers(map, options).rows) {
    if (r.verdict === 'not_a_transfer') continue;
    addNode({ id: `country:${r.country}`, kind: 'country', label: r.country, country: r.country });
    const from = r.recipient !== undefined && nodes.has(recipientId(r.recipient)) ? recipientId(r.recipient) : `system:${r.system}`;
    addEdge({ from, to: `country:${r.country}`, kind: 'transfer', label: `${r.mechanism ?? 'no mechanism'} (${r.verdict})` });
  }
  return { nodes: [...nodes.values()], edges: [...edges.values()] };
}

/** A DOT quoted string: backslashes and quotes escaped, line breaks as `\n` (DOT's own escape). */
function dotString(s: string): string {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\r\n|\r|\n/g, '\\n')}"`;
}

const DOT_SHAPE: Readonly<Record<DataFlowNode['kind'], string>> = { organization: 'house', system: 'box', recipient: 'component', country: 'ellipse' };
const DOT_STYLE: Readonly<Record<DataFlowEdge['kind'], string>> = { operates: 'dotted', reference: 'dashed', recipient: 'solid', transfer: 'bold' };

/** The graph in Graphviz DOT (`dot -Tsvg`); every id and label is a quoted, escaped string. */
export function graphToDot(graph: DataFlowGraph): string {
  const lines = ['digraph datamap {', '  rankdir=LR;', '  node [fontname="Helvetica"];', '  edge [fontname="Helvetica", fontsize=10];'];
  for (const n of graph.nodes) {
    const label = nodeSubtitle(n) === '' ? n.label : `${n.label}\n${nodeSubtitle(n)}`;
    lines.push(`  ${dotString(n.id)} [label=${dotString(label)}, shape=${DOT_SHAPE[n.kind]}];`);
  }
  for (const e of graph.edges) {
    lines.push(`  ${dotString(e.from)} -> ${dotString(e.to)} [style=${DOT_STYLE[e.kind]}${e.label === undefined ? '' : `, label=${dotString(e.label)}`}];`);
  }
  lines.push('}');
  return lines.join('\n') + '\n';
}

function nodeSubtitle(n: DataFlowNode): string {
  if (n.kind === 'system') return [n.country, n.datasets?.join(', ')].filter((s) => s !== undefined && s !== '').join(' · ');
  if (n.kind === 'recipient') return n.country ?? '';
  return '';
}

const LAYER: Readonly<Record<DataFlowNode['kind'], number>> = { organization: 0, system: 1, recipient: 2, country: 3 };
const NODE_W = 210;
const NODE_H = 46;
const COL_GAP = 110;
const ROW_GAP = 24;
const MARGIN = 90;
const FILL: Readonly<Record<DataFlowNode['kind'], string>> = { organization: '#e8eefc', system: '#eef7ee', recipient: '#fff6e0', country: '#f4e8f8' };
const STROKE: Readonly<Record<DataFlowEdge['kind'], string>> = { operates: '#9a9a9a', reference: '#2f6fb0', recipient: '#3a3a3a', transfer: '#b03a2e' };

function truncate(s: string, max: number): string {
  const chars = [...s];
  return chars.length <= max ? s : `${chars.slice(0, max - 1).join('')}…`;
}

/**
 * The graph as a standalone SVG document with a deterministic layered layout: one column per node kind
 * (organization, systems, recipients, countries), nodes stacked in graph order; edges between columns are
 * curves from right to left side, references between systems arcs on the column's left. No script, no external
 * resource, every text escaped; the full label of a node is its `<title>` (tooltips, screen readers).
 * O(nodes + edges).
 */
export function graphToSvg(graph: DataFlowGraph): string {
  const e = escapeXml;
  const columns: DataFlowNode[][] = [[], [], [], []];
  for (const n of graph.nodes) columns[LAYER[n.kind]]!.push(n);
  const rows = Math.max(1, ...columns.map((c) => c.length));
  const height = MARGIN * 2 + rows * NODE_H + (rows - 1) * ROW_GAP;
  const width = MARGIN * 2 + 4 * NODE_W + 3 * COL_GAP;
  const pos = new Map<string, { x: number; y: number }>();
  columns.forEach((col, c) => {
    // Centre each column vertically so short columns sit beside the middle of long ones.
    const colHeight = col.length * NODE_H + Math.max(0, col.length - 1) * ROW_GAP;
    const top = MARGIN + (height - 2 * MARGIN - colHeight) / 2;
    col.forEach((n, r) => pos.set(n.id, { x: MARGIN + c * (NODE_W + COL_GAP), y: Math.round(top + r * (NODE_H + ROW_GAP)) }));
  });
  const out: string[] = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-labelledby="graph-title" font-family="Helvetica, Arial, sans-serif">`,
    '<title id="graph-title">Data-flow graph of the data map</title>',
    '<defs>',
    ...Object.entries(STROKE).map(([kind, color]) => `<marker id="arrow-${kind}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="${color}"/></marker>`),
    '</defs>',
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`,
  ];
  ['Organization', 'Systems', 'Recipients', 'Countries (transfers)'].forEach((h, c) => {
    out.push(`<text x="${MARGIN + c * (NODE_W + COL_GAP) + NODE_W / 2}" y="${MARGIN / 2}" text-anchor="middle" font-size="14" font-weight="bold" fill="#222">${h}</text>`);
  });
  out.push('<g id="edges" fill="none">');
  graph.edges.forEach((edge, i) => {
    const a = pos.get(edge.from);
    const b = pos.get(edge.to);
    if (a === undefined || b === undefined) return;
    let d: string;
    let lx: number;
    let ly: number;
    if (a.x === b.x) {
      // Same column: an arc on the left, wider for nodes further apart so arcs do not overlap.
      const x = a.x;
      const y1 = a.y + NODE_H / 2;
      const y2 = b.y + NODE_H / 2;
      const bulge = 30 + Math.min(50, Math.abs(y2 - y1) / 6) + (i % 3) * 6;
      d = `M${x},${y1} C${x - bulge},${y1} ${x - bulge},${y2} ${x},${y2}`;
      lx = x - bulge - 4;
      ly = (y1 + y2) / 2;
    } else {
      const [x1, x2] = a.x < b.x ? [a.x + NODE_W, b.x] : [a.x, b.x + NODE_W];
      const y1 = a.y + NODE_H / 2;
      const y2 = b.y + NODE_H / 2;
      const mid = (x1 + x2) / 2;
      d = `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`;
      lx = mid;
      ly = (y1 + y2) / 2 - 4;
    }
    out.push(`<path d="${d}" stroke="${STROKE[edge.kind]}" stroke-width="${edge.kind === 'transfer' ? 2 : 1.2}"${edge.kind === 'reference' ? ' stroke-dasharray="5 3"' : ''} marker-end="url(#arrow-${edge.kind})"><title>${e(`${edge.kind}: ${edge.from} → ${edge.to}${edge.label === undefined ? '' : ` (${edge.label})`}`)}</title></path>`);
    if (edge.label !== undefined && edge.kind !== 'operates') {
      out.push(`<text x="${lx}" y="${ly}" text-anchor="${a.x === b.x ? 'end' : 'middle'}" font-size="10" fill="${STROKE[edge.kind]}">${e(truncate(edge.label, 34))}</text>`);
    }
  });
  out.push('</g>', '<g id="nodes">');
  for (const n of graph.nodes) {
    const p = pos.get(n.id)!;
    const sub = nodeSubtitle(n);
    out.push(
      `<g><title>${e(`${n.kind}: ${n.label}${sub === '' ? '' : ` (${sub})`}`)}</title>` +
        `<rect x="${p.x}" y="${p.y}" width="${NODE_W}" height="${NODE_H}" rx="${n.kind === 'country' ? NODE_H / 2 : 6}" fill="${FILL[n.kind]}" stroke="#555"/>` +
        `<text x="${p.x + NODE_W / 2}" y="${p.y + (sub === '' ? NODE_H / 2 + 5 : 19)}" text-anchor="middle" font-size="13" fill="#111">${e(truncate(n.label, 28))}</text>` +
        (sub === '' ? '' : `<text x="${p.x + NODE_W / 2}" y="${p.y + 36}" text-anchor="middle" font-size="10" fill="#444">${e(truncate(sub, 36))}</text>`) +
        '</g>',
    );
  }
  out.push('</g>', '</svg>');
  return out.join('\n') + '\n';
}
