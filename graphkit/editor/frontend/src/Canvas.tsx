// The canvas: React Flow drawing the graph Python sends, reporting each edit as a small
// event (connect, disconnect, move, delete, add, copy, paste...). Edits show at once
// (optimistically); Python's next render is the truth and replaces them.
import {
  Background,
  BackgroundVariant,
  ConnectionMode,
  Controls,
  MiniMap,
  Panel,
  ReactFlow,
  ReactFlowProvider,
  applyEdgeChanges,
  applyNodeChanges,
  useNodesInitialized,
  useReactFlow,
  type Connection,
  type Edge,
  type EdgeChange,
  type FinalConnectionState,
  type NodeChange,
  type OnSelectionChangeParams,
  type Viewport,
} from "@xyflow/react";
import { useCallback, useEffect, useMemo, useRef, useState, type MouseEvent as ReactMouseEvent } from "react";
import { CanvasContext, feeds, type CanvasTools } from "./context";
import { GraphNode, splitHandle, type GraphNodeType } from "./GraphNode";
import { NodeMenu } from "./NodeMenu";
import { NodeSearch, type DragEnd } from "./NodeSearch";
import type { Outbox } from "./outbox";
import type { CanvasData, EditEvent, NodeView } from "./types";

const nodeTypes = { graph: GraphNode };
// The last viewport of each graph in this browser tab, kept across mounts of the canvas and
// reloads of the page (sessionStorage is per tab), so the view does not jump.
const VIEW_STORE = "graphkit-canvas-view:";

function savedView(key: string): Viewport | null {
  try {
    const raw = window.sessionStorage.getItem(VIEW_STORE + key);
    const view = raw ? JSON.parse(raw) : null;
    return view && [view.x, view.y, view.zoom].every((v) => typeof v === "number" && isFinite(v)) ? view : null;
  } catch {
    return null;
  }
}

function saveView(key: string, view: Viewport): void {
  try {
    window.sessionStorage.setItem(VIEW_STORE + key, JSON.stringify({ x: view.x, y: view.y, zoom: view.zoom }));
  } catch {
    // storage full or off: the view is simply not kept
  }
}
const TOAST_MS = 4000;
const VIEW_PADDING = 24;
const VIEW_TOP = 56; // below the toolbar
const MINIMAP_FROM = 12; // graphs with more nodes than this get a minimap

interface Props {
  data: CanvasData;
  outbox: Outbox;
}

export function CanvasApp(props: Props) {
  return (
    <ReactFlowProvider>
      <Flow {...props} />
    </ReactFlowProvider>
  );
}

/** React Flow nodes for Python's node views, reusing unchanged ones (and where a node is
 * being dragged, its position under the mouse). */
function toNodes(data: CanvasData, previous: GraphNodeType[]): GraphNodeType[] {
  const before = new Map(previous.map((n) => [n.id, n]));
  const selected = new Set(data.selected);
  return data.nodes.map((view) => {
    const old = before.get(view.id);
    const sig = JSON.stringify(view);
    const position = old?.dragging ? old.position : { x: view.x, y: view.y };
    const isSelected = selected.has(view.id);
    if (
      old &&
      (old.data as { sig?: string }).sig === sig &&
      old.position.x === position.x &&
      old.position.y === position.y &&
      !!old.selected === isSelected
    ) {
      return old;
    }
    return { ...(old ?? {}), id: view.id, type: "graph", position, data: { view, sig }, selected: isSelected } as GraphNodeType;
  });
}

function edgeId(target: string, port: string): string {
  return `${target}.${port}`;
}

function toEdges(data: CanvasData): Edge[] {
  return data.edges.map((e) => ({
    id: edgeId(e.target, e.targetPort),
    source: e.source,
    sourceHandle: `out:${e.sourcePort}`,
    target: e.target,
    targetHandle: `in:${e.targetPort}`,
    style: { stroke: data.colours[e.type] ?? "#888", strokeWidth: 2.5 },
    data: { type: e.type },
  }));
}

/** Whether ``to`` can be reached from ``from`` along the links (a link to->from would loop). */
function reaches(edges: Edge[], from: string, to: string): boolean {
  const next = new Map<string, string[]>();
  for (const e of edges) next.set(e.source, [...(next.get(e.source) ?? []), e.target]);
  const stack = [from];
  const seen = new Set<string>();
  while (stack.length) {
    const id = stack.pop() as string;
    if (id === to) return true;
    if (seen.has(id)) continue;
    seen.add(id);
    stack.push(...(next.get(id) ?? []));
  }
  return false;
}

function portOf(nodes: GraphNodeType[], node: string, handle: string | null | undefined) {
  if (!handle) return null;
  const [dir, name] = splitHandle(handle);
  const view = nodes.find((n) => n.id === node)?.data.view;
  const ports = dir === "in" ? view?.inputs : view?.outputs;
  const port = ports?.find((p) => p.name === name);
  return port ? { dir: dir as "in" | "out", name, type: port.type } : null;
}

function isEditable(target: EventTarget | null): boolean {
  const el = target as HTMLElement | null;
  if (!el || !el.tagName) return false;
  return ["INPUT", "TEXTAREA", "SELECT"].includes(el.tagName) || el.isContentEditable;
}

interface SearchState {
  left: number;
  top: number;
  flowX: number;
  flowY: number;
  from: DragEnd | null;
}

interface MenuState {
  left: number;
  top: number;
  nodes: string[];
}

function Flow({ data, outbox }: Props) {

  const rf = useReactFlow<GraphNodeType, Edge>();
  const [nodes, setNodes] = useState<GraphNodeType[]>([]);
  const [edges, setEdges] = useState<Edge[]>([]);
  const [search, setSearch] = useState<SearchState | null>(null);
  const [menu, setMenu] = useState<MenuState | null>(null);
  const [toast, setToast] = useState("");
  const [syncedRev, setSyncedRev] = useState(-1);
  const [ready, setReady] = useState(false);
  const wrapper = useRef<HTMLDivElement>(null);
  const nodesRef = useRef(nodes);
  nodesRef.current = nodes;
  const edgesRef = useRef(edges);
  edgesRef.current = edges;
  const dataRef = useRef(data);
  dataRef.current = data;
  const pointer = useRef<{ x: number; y: number } | null>(null);
  const pickup = useRef<Edge | null>(null);
  const connected = useRef(false);
  const fittedGraph = useRef<string | null>(null);
  const focused = useRef<string | null>(null);
  const lastSelection = useRef("");
  const copied = useRef(false); // a copy was sent from here (Python may not have said so yet)
  const toastTimer = useRef<ReturnType<typeof setTimeout> | null>(null);

  const send = useCallback((event: EditEvent) => outbox.push(event), [outbox]);
  const say = useCallback((text: string) => {
    setToast(text);
    if (toastTimer.current) clearTimeout(toastTimer.current);
    toastTimer.current = setTimeout(() => setToast(""), TOAST_MS);
  }, []);

  // Python's render is the truth, once it has applied every edit sent.
  useEffect(() => {
    outbox.ack(data.acked[outbox.client] ?? 0);
    if (outbox.busy) return;
    setNodes((previous) => toNodes(data, previous));
    setEdges(toEdges(data));
    lastSelection.current = [...data.selected].sort().join(" ");
    setSyncedRev(data.rev);
  }, [data, outbox]);

  // The default view of a graph just opened: all of it when it fits at a readable zoom,
  // else its top left corner (where the sources are) at the smallest readable zoom.
  const initialized = useNodesInitialized();
  useEffect(() => {
    if (!nodes.length) {
      setReady(true);
      return;
    }
    const graphKey = `${data.graph}:${data.viewKey}`;
    if (!initialized || fittedGraph.current === graphKey) return;
    const box = wrapper.current?.getBoundingClientRect();
    if (!box || !box.width || !box.height) return;
    fittedGraph.current = graphKey;
    const saved = savedView(data.viewKey);
    if (saved) {
      rf.setViewport(saved).then(() => setReady(true));
      return;
    }
    const bounds = rf.getNodesBounds(nodes.map((n) => n.id));
    const fit = Math.min(
      (box.width - 2 * VIEW_PADDING) / Math.max(bounds.width, 1),
      (box.height - VIEW_TOP - VIEW_PADDING) / Math.max(bounds.height, 1),
      1,
    );
    const zoom = Math.max(fit, data.minZoom);
    const x = fit >= data.minZoom ? (box.width - bounds.width * zoom) / 2 - bounds.x * zoom : VIEW_PADDING - bounds.x * zoom;
    const y = fit >= data.minZoom ? Math.max((box.height - bounds.height * zoom) / 2, VIEW_TOP) - bounds.y * zoom : VIEW_TOP - bounds.y * zoom;
    rf.setViewport({ x, y, zoom }).then(() => setReady(true));
  }, [initialized, nodes, data.graph, data.viewKey, data.minZoom, rf]);

  // A node just added comes into view when it is outside.
  useEffect(() => {
    const id = data.focus;
    if (!id || focused.current === `${data.rev}:${id}` || !initialized) return;
    focused.current = `${data.rev}:${id}`;
    const node = nodesRef.current.find((n) => n.id === id);
    const box = wrapper.current?.getBoundingClientRect();
    if (!node || !box) return;
    const view = rf.getViewport();
    const sx = node.position.x * view.zoom + view.x;
    const sy = node.position.y * view.zoom + view.y;
    if (sx < 0 || sy < 0 || sx > box.width - 100 || sy > box.height - 60) {
      rf.setCenter(node.position.x + 110, node.position.y + 60, { zoom: view.zoom, duration: 200 });
    }
  }, [data.focus, data.rev, initialized, rf]);

  const onNodesChange = useCallback((changes: NodeChange<GraphNodeType>[]) => {
    setNodes((ns) => applyNodeChanges(changes, ns));
  }, []);
  const onEdgesChange = useCallback((changes: EdgeChange<Edge>[]) => {
    setEdges((es) => applyEdgeChanges(changes, es));
  }, []);

  const isValidConnection = useCallback((c: Connection | Edge) => {
    if (!c.sourceHandle || !c.targetHandle || c.source === c.target) return false;
    const src = portOf(nodesRef.current, c.source, c.sourceHandle);
    const dst = portOf(nodesRef.current, c.target, c.targetHandle);
    if (!src || !dst || !feeds(dataRef.current.accepts, src.type, dst.type)) return false;
    return !reaches(edgesRef.current, c.target, c.source);
  }, []);

  const onConnectStart = useCallback(() => {
    connected.current = false;
    setSearch(null);
    setMenu(null);
  }, []);

  const onConnect = useCallback(
    (c: Connection) => {
      connected.current = true;
      const src = splitHandle(c.sourceHandle ?? "")[1];
      const dst = splitHandle(c.targetHandle ?? "")[1];
      const id = edgeId(c.target, dst);
      const type = portOf(nodesRef.current, c.source, c.sourceHandle)?.type ?? "";
      setEdges((es) => [
        ...es.filter((e) => e.id !== id),
        { id, ...c, style: { stroke: dataRef.current.colours[type] ?? "#888", strokeWidth: 2.5 }, data: { type } } as Edge,
      ]);
      const old = pickup.current;
      if (old && old.id !== id) send({ op: "disconnect", dst: old.id });
      send({ op: "connect", src: `${c.source}.${src}`, dst: `${c.target}.${dst}` });
    },
    [send],
  );

  const onConnectEnd = useCallback(
    (event: MouseEvent | TouchEvent, state: FinalConnectionState) => {
      const old = pickup.current;
      pickup.current = null;
      if (connected.current) return;
      if (old) {
        send({ op: "disconnect", dst: old.id });
        return;
      }
      const from = state.fromNode ? portOf(nodesRef.current, state.fromNode.id, state.fromHandle?.id) : null;
      if (!from || !state.fromNode) return;
      if (state.toHandle && state.toNode) {
        const to = portOf(nodesRef.current, state.toNode.id, state.toHandle.id);
        if (!to) return;
        const [out, inp] = from.dir === "out" ? [from, to] : [to, from];
        const [outNode, inNode] = from.dir === "out" ? [state.fromNode.id, state.toNode.id] : [state.toNode.id, state.fromNode.id];
        if (out.dir === inp.dir) say(`cannot connect ${outNode}.${out.name} to ${inNode}.${inp.name}: both are ${out.dir === "in" ? "inputs" : "outputs"}`);
        else if (!feeds(dataRef.current.accepts, out.type, inp.type))
          say(`cannot connect ${outNode}.${out.name} to ${inNode}.${inp.name}: it gives ${out.type}, the input takes ${inp.type}`);
        else say(`cannot connect ${outNode}.${out.name} to ${inNode}.${inp.name}: that would make a cycle`);
        return;
      }
      const point = "changedTouches" in event ? event.changedTouches[0] : event;
      const box = wrapper.current?.getBoundingClientRect();
      if (!box) return;
      const flow = rf.screenToFlowPosition({ x: point.clientX, y: point.clientY });
      setSearch({
        left: point.clientX - box.left,
        top: point.clientY - box.top,
        flowX: flow.x,
        flowY: flow.y,
        from: { dir: from.dir, node: state.fromNode.id, port: from.name, type: from.type },
      });
    },
    [rf, say, send],
  );

  // A drag that starts on a connected input picks its link up: the link leaves the input
  // and follows the mouse from its output; dropped on empty canvas it is gone.
  const pickUp = useCallback(
    (node: string, port: string, clientX: number, clientY: number) => {
      const edge = edgesRef.current.find((e) => e.id === edgeId(node, port));
      if (!edge) return;
      const srcPort = splitHandle(edge.sourceHandle ?? "")[1];
      const handle = wrapper.current?.querySelector(
        `.react-flow__handle[data-node="${CSS.escape(edge.source)}"][data-port="${CSS.escape(srcPort)}"][data-dir="out"]`,
      );
      setEdges((es) => es.filter((e) => e.id !== edge.id));
      setSearch(null);
      if (!handle) {
        send({ op: "disconnect", dst: edge.id });
        return;
      }
      pickup.current = edge;
      connected.current = false;
      const restore = () => {
        document.removeEventListener("mouseup", restore);
        setTimeout(() => {
          if (pickup.current === edge) {
            // released without moving: nothing happened
            pickup.current = null;
            setEdges(toEdges(dataRef.current));
          }
        }, 0);
      };
      document.addEventListener("mouseup", restore);
      handle.dispatchEvent(new MouseEvent("mousedown", { bubbles: true, cancelable: true, clientX, clientY, button: 0, view: window }));
    },
    [send],
  );

  const onNodeDragStop = useCallback(
    (_event: unknown, _node: GraphNodeType, dragged: GraphNodeType[]) => {
      const positions: Record<string, [number, number]> = {};
      for (const n of dragged) positions[n.id] = [Math.round(n.position.x), Math.round(n.position.y)];
      if (Object.keys(positions).length) send({ op: "move", positions });
    },
    [send],
  );

  const onDelete = useCallback(
    ({ nodes: gone, edges: cut }: { nodes: GraphNodeType[]; edges: Edge[] }) => {
      const ids = gone.map((n) => n.id);
      const inputs = cut.filter((e) => !ids.includes(e.target) && !ids.includes(e.source)).map((e) => e.id);
      if (ids.length || inputs.length) send({ op: "delete", nodes: ids, inputs });
    },
    [send],
  );

  const onSelectionChange = useCallback(
    ({ nodes: chosen }: OnSelectionChangeParams) => {
      const ids = chosen.map((n) => n.id).sort();
      const key = ids.join(" ");
      if (key === lastSelection.current) return;
      lastSelection.current = key;
      send({ op: "select", nodes: ids });
    },
    [send],
  );

  const selectedIds = useCallback(() => nodesRef.current.filter((n) => n.selected).map((n) => n.id), []);

  const onNodeContextMenu = useCallback(
    (event: ReactMouseEvent, node: GraphNodeType) => {
      event.preventDefault();
      const box = wrapper.current?.getBoundingClientRect();
      if (!box) return;
      const chosen = selectedIds();
      setSearch(null);
      setMenu({
        left: event.clientX - box.left,
        top: event.clientY - box.top,
        nodes: chosen.includes(node.id) ? chosen : [node.id],
      });
    },
    [selectedIds],
  );

  const onMenu = useCallback(
    (action: "run_to" | "duplicate" | "copy" | "delete") => {
      const chosen = menu?.nodes ?? [];
      setMenu(null);
      if (!chosen.length) return;
      if (action === "copy") copied.current = true;
      if (action === "run_to") send({ op: "run_to", node: chosen[0] });
      else if (action === "delete") send({ op: "delete", nodes: chosen, inputs: [] });
      else send({ op: action, nodes: chosen });
    },
    [menu, send],
  );

  const viewCentre = useCallback(() => {
    const box = wrapper.current?.getBoundingClientRect();
    if (!box) return { x: 0, y: 0 };
    return rf.screenToFlowPosition({ x: box.left + box.width / 2, y: box.top + box.height / 2 });
  }, [rf]);

  // Keys: Ctrl+S saves (anywhere), Ctrl+Z / Ctrl+Shift+Z (or Ctrl+Y) undo and redo,
  // Ctrl+C / Ctrl+V copy and paste nodes (Ctrl+Shift+V keeps their input links);
  // Delete and Backspace are React Flow's. Keys typed into a field stay the field's.
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      const mod = event.ctrlKey || event.metaKey;
      const key = event.key.toLowerCase();
      if (mod && key === "s") {
        event.preventDefault();
        // a field being typed in hands its value to Streamlit when it loses focus: first
        if (isEditable(event.target)) (event.target as HTMLElement).blur();
        send({ op: "save" });
        return;
      }
      if (isEditable(event.target)) return;
      if (mod && key === "z") {
        event.preventDefault();
        send({ op: event.shiftKey ? "redo" : "undo" });
      } else if (mod && key === "y") {
        event.preventDefault();
        send({ op: "redo" });
      } else if (mod && key === "c") {
        const chosen = selectedIds();
        if (!chosen.length || (window.getSelection()?.toString() ?? "") !== "") return;
        event.preventDefault();
        send({ op: "copy", nodes: chosen });
        copied.current = true;
        say(`copied ${chosen.length} node${chosen.length > 1 ? "s" : ""}`);
      } else if (mod && key === "v") {
        if (!dataRef.current.clipboard && !copied.current) return;
        event.preventDefault();
        const at = pointer.current ?? viewCentre();
        send({ op: "paste", x: Math.round(at.x), y: Math.round(at.y), keep_inputs: event.shiftKey });
      } else if (key === "escape") {
        setSearch(null);
        setMenu(null);
      }
    };
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  }, [send, say, selectedIds, viewCentre]);

  const onMouseMove = useCallback(
    (event: ReactMouseEvent) => {
      pointer.current = rf.screenToFlowPosition({ x: event.clientX, y: event.clientY });
    },
    [rf],
  );

  const onDoubleClick = useCallback(
    (event: ReactMouseEvent) => {
      const target = event.target as HTMLElement;
      if (!target.classList?.contains("react-flow__pane")) return;
      const box = wrapper.current?.getBoundingClientRect();
      if (!box) return;
      const flow = rf.screenToFlowPosition({ x: event.clientX, y: event.clientY });
      setMenu(null);
      setSearch({ left: event.clientX - box.left, top: event.clientY - box.top, flowX: flow.x, flowY: flow.y, from: null });
    },
    [rf],
  );

  const onPick = useCallback(
    (type: string) => {
      if (!search) return;
      const wire: { from?: string; to?: string } = {};
      if (search.from?.dir === "out") wire.from = `${search.from.node}.${search.from.port}`;
      if (search.from?.dir === "in") wire.to = `${search.from.node}.${search.from.port}`;
      send({ op: "add", type, x: Math.round(search.flowX), y: Math.round(search.flowY), ...wire });
      setSearch(null);
    },
    [search, send],
  );

  const closePopups = useCallback(() => {
    setSearch(null);
    setMenu(null);
  }, []);

  const tools: CanvasTools = useMemo(
    () => ({ accepts: data.accepts, colours: data.colours, pickUp }),
    [data.accepts, data.colours, pickUp],
  );

  return (
    <CanvasContext.Provider value={tools}>
      <div
        className="gk-canvas"
        ref={wrapper}
        onMouseMove={onMouseMove}
        onDoubleClick={onDoubleClick}
        data-canvas=""
        data-rev={syncedRev}
        data-ready={ready ? "1" : "0"}
        data-nodes={nodes.length}
      >
        <ReactFlow<GraphNodeType, Edge>
          nodes={nodes}
          edges={edges}
          nodeTypes={nodeTypes}
          onNodesChange={onNodesChange}
          onEdgesChange={onEdgesChange}
          onConnect={onConnect}
          onConnectStart={onConnectStart}
          onConnectEnd={onConnectEnd}
          isValidConnection={isValidConnection}
          onNodeDragStop={onNodeDragStop}
          onDelete={onDelete}
          onSelectionChange={onSelectionChange}
          onNodeContextMenu={onNodeContextMenu}
          onPaneClick={closePopups}
          onMoveStart={closePopups}
          onMoveEnd={(_event, view) => saveView(dataRef.current.viewKey, view)}
          connectionMode={ConnectionMode.Strict}
          deleteKeyCode={["Delete", "Backspace"]}
          multiSelectionKeyCode={["Shift", "Control", "Meta"]}
          selectionKeyCode="Shift"
          zoomOnDoubleClick={false}
          connectionRadius={24}
          nodeDragThreshold={2}
          minZoom={0.1}
          maxZoom={2}
          elevateEdgesOnSelect
          proOptions={{ hideAttribution: false }}
          attributionPosition="top-right"
        >
          <Background variant={BackgroundVariant.Dots} gap={20} size={1.2} />
          <Controls showInteractive={false} position="bottom-left" />
          {nodes.length > MINIMAP_FROM && (
          <MiniMap
            pannable
            zoomable
            position="bottom-right"
            style={{ width: 150, height: 100 }}
            nodeColor={(n) => (n.data as { view: NodeView }).view.colour}
            nodeStrokeWidth={2}
          />
          )}
          <Panel position="top-left" className="gk-toolbar">
            <button type="button" onClick={() => send({ op: "undo" })} title="Undo (Ctrl+Z)" aria-label="Undo">
              ↶
            </button>
            <button type="button" onClick={() => send({ op: "redo" })} title="Redo (Ctrl+Shift+Z)" aria-label="Redo">
              ↷
            </button>
            <span
              className="gk-hint"
              title={
                "Drag from an output (right) to an input (left) to connect; drag a link off an input to remove it.\n" +
                "Drop a link on empty canvas, or double-click it, to add a node.\n" +
                "Shift+drag selects a box; Delete removes; Ctrl+C / Ctrl+V copy and paste; Ctrl+Z / Ctrl+Shift+Z undo and redo; Ctrl+S saves.\n" +
                "Right-click a node: run to here, duplicate, copy, delete."
              }
            >
              ?
            </span>
          </Panel>
          {toast && (
            <Panel position="bottom-center" className="gk-toast" data-toast="">
              {toast}
            </Panel>
          )}
        </ReactFlow>
        {search && (
          <NodeSearch
            left={search.left}
            top={search.top}
            from={search.from}
            catalog={data.catalog}
            accepts={data.accepts}
            onPick={onPick}
            onClose={() => setSearch(null)}
          />
        )}
        {menu && <NodeMenu left={menu.left} top={menu.top} nodes={menu.nodes} onChoose={onMenu} />}
      </div>
    </CanvasContext.Provider>
  );
}
