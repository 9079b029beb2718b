import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildDataFlowGraph, graphToDot, graphToSvg, type DataFlowGraph } from '../../../src/datamap/reports/index.js';
import { webShopMap } from '../../fixtures/datamap/web-shop.js';
import { checkXml } from './support.js';

/**
 * Tokenises DOT the way Graphviz does for the subset we emit (ids and quoted strings, punctuation) and returns
 * the quoted strings unescaped; throws on an unterminated string or unbalanced braces/brackets.
 */
function dotStrings(dot: string): string[] {
  const out: string[] = [];
  const depth = { '{': 0, '[': 0 };
  for (let i = 0; i < dot.length; i++) {
    const c = dot[i]!;
    if (c === '"') {
      let s = '';
      for (i++; ; i++) {
        if (i >= dot.length) throw new Error('unterminated string');
        const d = dot[i]!;
        if (d === '\\') {
          const next = dot[++i];
          s += next === 'n' ? '\n' : next;
        } else if (d === '"') break;
        else if (d === '\n') throw new Error('raw newline in string');
        else s += d;
      }
      out.push(s);
    } else if (c === '{' || c === '[') depth[c]++;
    else if (c === '}') depth['{']--;
    else if (c === ']') depth['[']--;
    if (depth['{'] < 0 || depth['['] < 0) throw new Error('unbalanced');
  }
  if (depth['{'] !== 0 || depth['['] !== 0) throw new Error('unbalanced');
  return out;
}

describe('data-flow graph', () => {
  const graph = buildDataFlowGraph(webShopMap());
  const node = (id: string) => graph.nodes.find((n) => n.id === id);

  it('has the organization, systems, recipients and transfer countries', () => {
    expect(graph.nodes.filter((n) => n.kind === 'system').map((n) => n.id)).toEqual(['system:crm', 'system:analytics', 'system:hr', 'system:support']);
    expect(node('system:crm')).toEqual({ id: 'system:crm', kind: 'system', label: 'Customer CRM', country: 'DE', datasets: ['crm_db'] });
    expect(node('organization')?.label).toBe('Example Shop GmbH');
    expect(graph.nodes.filter((n) => n.kind === 'country').map((n) => n.id)).toEqual(['country:US', 'country:GB', 'country:IN', 'country:CA']);
    // No node for a country inside the EEA.
    expect(node('country:DE')).toBeUndefined();
  });

  it('derives references between systems from field references across datasets', () => {
    const refs = graph.edges.filter((e) => e.kind === 'reference').map((e) => `${e.from} -> ${e.to}`);
    expect(refs).toEqual(['system:analytics -> system:crm', 'system:support -> system:crm', 'system:crm -> system:support']);
    // References inside one system (orders → customers, sick_leave → employees) are not edges.
    expect(graph.edges.some((e) => e.kind === 'reference' && e.from === e.to)).toBe(false);
  });

  it('draws transfers with their mechanism and verdict', () => {
    const transfers = graph.edges.filter((e) => e.kind === 'transfer');
    expect(transfers).toContainEqual({ from: 'recipient:helpcloud ltd', to: 'country:CA', kind: 'transfer', label: 'dpf (mechanism_inconsistent)' });
    expect(transfers).toContainEqual({ from: 'recipient:benefits partner pvt ltd', to: 'country:IN', kind: 'transfer', label: 'no mechanism (missing_mechanism)' });
    for (const e of graph.edges) {
      expect(node(e.from), e.from).toBeDefined();
      expect(node(e.to), e.to).toBeDefined();
    }
  });

  it('renders DOT whose strings are escaped and read back to the ids and labels', () => {
    const dot = graphToDot(graph);
    expect(dot.startsWith('digraph datamap {\n')).toBe(true);
    const strings = dotStrings(dot);
    for (const n of graph.nodes) expect(strings).toContain(n.id);
  });

  it('DOT: arbitrary labels stay inside their strings', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), (label, edgeLabel) => {
        const g: DataFlowGraph = {
          nodes: [
            { id: 'a', kind: 'system', label },
            { id: `b"${label}`, kind: 'recipient', label: 'B' },
          ],
          edges: [{ from: 'a', to: `b"${label}`, kind: 'recipient', label: edgeLabel }],
        };
        const strings = dotStrings(graphToDot(g));
        const norm = (s: string) => s.replace(/\r\n|\r/g, '\n');
        expect(strings).toContain(norm(label));
        expect(strings).toContain(norm(`b"${label}`));
        expect(strings).toContain(norm(edgeLabel));
      }),
    );
  });

  it('renders a well-formed standalone SVG', () => {
    const svg = graphToSvg(graph);
    const { root, elements } = checkXml(svg);
    expect(root).toBe('svg');
    expect(svg).toContain('xmlns="http://www.w3.org/2000/svg"');
    expect(elements.filter((e) => e === 'rect').length).toBe(graph.nodes.length + 1);
    expect(elements).not.toContain('script');
    expect(elements).not.toContain('image');
    expect(svg).not.toMatch(/(?:href|src)=/);
    expect(graphToSvg(buildDataFlowGraph(webShopMap()))).toBe(svg);
  });

  it('SVG stays well-formed with hostile labels', () => {
    const map = webShopMap((m) => {
      m.organization.name = '<script>alert(1)</script> & "quotes" \u0001';
      m.systems![0]!.name = ']]><!-- </svg> &amp; \'x\'';
      m.systems![1]!.recipients![0]!.name = '<svg onload="x">';
    });
    const g = buildDataFlowGraph(map);
    expect(() => checkXml(graphToSvg(g))).not.toThrow();
    expect(graphToSvg(g)).not.toContain('<script');
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (label) => {
        checkXml(graphToSvg({ nodes: [{ id: 'x', kind: 'organization', label }], edges: [{ from: 'x', to: 'x', kind: 'operates', label }] }));
      }),
      { numRuns: 200 },
    );
  });
});
