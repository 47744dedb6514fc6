// One node: title, id, named ports (inputs left, outputs right) coloured by type, a few
// key params, its problems and its state in the last run.
import { Handle, Position, useConnection, type Node, type NodeProps } from "@xyflow/react";
import { memo, useContext, type MouseEvent } from "react";
import { CanvasContext, feeds } from "./context";
import type { NodeView, PortView, StatusView } from "./types";

export type GraphNodeType = Node<{ view: NodeView }, "graph">;

/** The port a connection is being dragged from, as "dir|node|type" ("" when none). */
function useDragFrom(): string {
  return useConnection((c) => {
    if (!c.inProgress || !c.fromHandle?.id || !c.fromNode) return "";
    const [dir, name] = splitHandle(c.fromHandle.id);
    const view = (c.fromNode.data as { view?: NodeView }).view;
    const ports = dir === "in" ? view?.inputs : view?.outputs;
    const type = ports?.find((p) => p.name === name)?.type ?? "";
    return `${dir}|${c.fromNode.id}|${type}`;
  });
}

/** "in:image" -> ["in", "image"]. */
export function splitHandle(id: string): [string, string] {
  const at = id.indexOf(":");
  return [id.slice(0, at), id.slice(at + 1)];
}

const BADGES: Record<string, string> = {
  waiting: "waiting",
  running: "running",
  cached: "cached",
  done: "ran",
  failed: "failed",
  skipped: "skipped",
  cancelled: "cancelled",
};

function Badge({ status }: { status: StatusView }) {
  const steps = status.total ? ` ${status.step}/${status.total}` : "";
  const label = status.state === "running" ? `running${steps}` : BADGES[status.state] ?? status.state;
  return (
    <span className={`gk-badge gk-badge-${status.state}`} title={status.text} data-state={status.state}>
      {label}
    </span>
  );
}

function Port({ node, port, dir, dragFrom }: { node: string; port: PortView; dir: "in" | "out"; dragFrom: string }) {
  const { accepts, colours, pickUp } = useContext(CanvasContext);
  let dim = false;
  if (dragFrom) {
    const [fromDir, fromNode, ...rest] = dragFrom.split("|");
    const fromType = rest.join("|");
    if (fromNode === node) dim = true;
    else if (fromDir === dir) dim = true;
    else if (dir === "in") dim = !feeds(accepts, fromType, port.type);
    else dim = !feeds(accepts, port.type, fromType);
  }
  const onMouseDownCapture = (event: MouseEvent) => {
    if (dir !== "in" || !port.connected || event.button !== 0) return;
    event.stopPropagation();
    event.preventDefault();
    pickUp(node, port.name, event.clientX, event.clientY);
  };
  const colour = colours[port.type] ?? "#888";
  return (
    <div className={`gk-port gk-port-${dir}`} title={`${port.name}: ${port.type}${port.optional ? " (optional)" : ""}`}>
      <Handle
        type={dir === "in" ? "target" : "source"}
        position={dir === "in" ? Position.Left : Position.Right}
        id={`${dir}:${port.name}`}
        className={`gk-handle${dim ? " gk-dim" : ""}${port.connected ? " gk-connected" : ""}`}
        style={{ background: colour }}
        onMouseDownCapture={onMouseDownCapture}
        data-node={node}
        data-port={port.name}
        data-dir={dir}
        data-type={port.type}
      />
      <span className={`gk-port-name${port.optional ? " gk-optional" : ""}`}>{port.name}</span>
    </div>
  );
}

function GraphNodeInner({ data, selected }: NodeProps<GraphNodeType>) {
  const view = data.view;
  const dragFrom = useDragFrom();
  const rows = Math.max(view.inputs.length, view.outputs.length);
  const state = view.status?.state ?? "none";
  const classes = ["gk-node", `gk-state-${state}`];
  if (selected) classes.push("gk-selected");
  if (view.problems.length) classes.push("gk-invalid");
  const progress = view.status?.state === "running" && view.status.total ? view.status.step / view.status.total : null;
  return (
    <div className={classes.join(" ")} data-node={view.id} data-state={state}>
      <div className="gk-head" style={{ background: view.colour }}>
        <span className="gk-title">{view.title}</span>
        {view.status && <Badge status={view.status} />}
      </div>
      <div className="gk-id" title={view.type}>
        {view.id}
      </div>
      {progress !== null && (
        <div className="gk-progress" data-progress={progress.toFixed(2)}>
          <div style={{ width: `${Math.round(progress * 100)}%` }} />
        </div>
      )}
      <div className="gk-ports">
        {Array.from({ length: rows }, (_, i) => (
          <div className="gk-row" key={i}>
            {view.inputs[i] ? <Port node={view.id} port={view.inputs[i]} dir="in" dragFrom={dragFrom} /> : <span />}
            {view.outputs[i] ? <Port node={view.id} port={view.outputs[i]} dir="out" dragFrom={dragFrom} /> : <span />}
          </div>
        ))}
      </div>
      {view.params.length > 0 && (
        <div className="gk-params">
          {view.params.map(([name, value]) => (
            <div className="gk-param" key={name}>
              <span className="gk-param-name">{name}</span> <span className="gk-param-value">{value}</span>
            </div>
          ))}
        </div>
      )}
      {view.problems.length > 0 && (
        <div className="gk-problem" title={view.problems.join("\n")}>
          ⚠ {view.problems[0]}
          {view.problems.length > 1 ? ` (+${view.problems.length - 1})` : ""}
        </div>
      )}
      {view.status && (view.status.state === "failed" || view.status.state === "skipped") && (
        <div className="gk-status-text" title={view.status.text}>
          {view.status.text}
        </div>
      )}
    </div>
  );
}

export const GraphNode = memo(GraphNodeInner);
