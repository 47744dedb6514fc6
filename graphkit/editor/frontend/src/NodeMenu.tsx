// The menu of a node (right click): run to here, duplicate, copy, delete.
interface Props {
  left: number;
  top: number;
  nodes: string[];
  onChoose: (action: "run_to" | "duplicate" | "copy" | "delete") => void;
}

export function NodeMenu({ left, top, nodes, onChoose }: Props) {
  const single = nodes.length === 1;
  return (
    <div className="gk-menu nodrag" style={{ left, top }} role="menu" data-menu={nodes.join(" ")}>
      {single && (
        <button role="menuitem" onClick={() => onChoose("run_to")}>
          ▶ Run to here
        </button>
      )}
      <button role="menuitem" onClick={() => onChoose("duplicate")}>
        Duplicate
      </button>
      <button role="menuitem" onClick={() => onChoose("copy")}>
        Copy <kbd>Ctrl+C</kbd>
      </button>
      <button role="menuitem" onClick={() => onChoose("delete")}>
        Delete <kbd>Del</kbd>
      </button>
    </div>
  );
}
