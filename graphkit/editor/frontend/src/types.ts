// The data the editor (Python) sends to the canvas, and the edits the canvas sends back.
// Python owns the graph: everything that decides validity (port compatibility included)
// arrives here as data; the canvas only draws it and reports what the user did.

export interface PortView {
  name: string;
  type: string; // a port type name, a key of CanvasData.types
  optional?: boolean;
  connected?: boolean;
}

export interface StatusView {
  state: string; // waiting | running | cached | done | failed | skipped | cancelled
  step: number;
  total: number;
  text: string; // a few words, e.g. "ran in 0.12 s"
}

export interface NodeView {
  id: string;
  type: string;
  title: string;
  colour: string;
  x: number;
  y: number;
  inputs: PortView[];
  outputs: PortView[];
  params: [string, string][];
  problems: string[];
  status: StatusView | null;
}

export interface EdgeView {
  source: string;
  sourcePort: string;
  target: string;
  targetPort: string;
  type: string;
}

export interface CatalogEntry {
  type: string;
  title: string;
  category: string;
  doc: string;
  inputs: [string, string][];
  outputs: [string, string][];
}

export interface CanvasData {
  rev: number; // bumps whenever the document changes
  graph: number; // bumps when another graph is opened (the view is fitted again)
  viewKey: string; // names the graph in this browser tab: its last view is kept under it
  acked: Record<string, number>; // the last edit applied, per canvas client
  nodes: NodeView[];
  edges: EdgeView[];
  accepts: Record<string, string[]>; // output type -> the input types it may feed
  colours: Record<string, string>; // port type -> colour
  catalog: CatalogEntry[];
  selected: string[];
  focus: string | null; // a node just added: brought into view if it is outside
  running: boolean;
  clipboard: number; // nodes copied in this browser tab (Ctrl+V pastes them)
  minZoom: number; // the default view never zooms out further (keeps titles readable)
}

export type EditEvent =
  | { op: "connect"; src: string; dst: string }
  | { op: "disconnect"; dst: string }
  | { op: "move"; positions: Record<string, [number, number]> }
  | { op: "delete"; nodes: string[]; inputs: string[] }
  | { op: "add"; type: string; x: number; y: number; from?: string; to?: string }
  | { op: "copy"; nodes: string[] }
  | { op: "paste"; x: number; y: number; keep_inputs: boolean }
  | { op: "duplicate"; nodes: string[] }
  | { op: "select"; nodes: string[] }
  | { op: "undo" }
  | { op: "redo" }
  | { op: "save" }
  | { op: "run_to"; node: string };

export type SentEvent = EditEvent & { seq: number };

export interface EditPayload {
  client: string;
  events: SentEvent[];
  sent: number;
}

export interface CanvasState {
  edit: EditPayload | null;
  [key: string]: unknown;
}
