// A searchable list of node types, opened where a link was dropped on empty canvas (only
// types that can take the link) or by a double click on the canvas (every type).
import { useEffect, useMemo, useRef, useState, type KeyboardEvent } from "react";
import { feeds } from "./context";
import type { CatalogEntry } from "./types";

export interface DragEnd {
  dir: "in" | "out"; // the side of the port the link was dragged from
  node: string;
  port: string;
  type: string;
}

interface Props {
  left: number;
  top: number;
  from: DragEnd | null;
  catalog: CatalogEntry[];
  accepts: Record<string, string[]>;
  onPick: (type: string) => void;
  onClose: () => void;
}

const MAX_SHOWN = 40;

/** Node types that can take a link from ``from`` (every type when there is none). */
export function candidates(catalog: CatalogEntry[], accepts: Record<string, string[]>, from: DragEnd | null): CatalogEntry[] {
  if (!from) return catalog;
  return catalog.filter((entry) =>
    from.dir === "out"
      ? entry.inputs.some(([, type]) => feeds(accepts, from.type, type))
      : entry.outputs.some(([, type]) => feeds(accepts, type, from.type)),
  );
}

export function NodeSearch({ left, top, from, catalog, accepts, onPick, onClose }: Props) {
  const [query, setQuery] = useState("");
  const [active, setActive] = useState(0);
  const input = useRef<HTMLInputElement>(null);
  const fitting = useMemo(() => candidates(catalog, accepts, from), [catalog, accepts, from]);
  const shown = useMemo(() => {
    const words = query.toLowerCase().split(/\s+/).filter(Boolean);
    return fitting
      .filter((e) => {
        const text = `${e.type} ${e.title} ${e.category} ${e.doc}`.toLowerCase();
        return words.every((w) => text.includes(w));
      })
      .slice(0, MAX_SHOWN);
  }, [fitting, query]);

  useEffect(() => input.current?.focus(), []);
  useEffect(() => setActive(0), [query]);

  const onKeyDown = (event: KeyboardEvent) => {
    event.stopPropagation();
    if (event.key === "Escape") onClose();
    else if (event.key === "ArrowDown") setActive((a) => Math.min(a + 1, shown.length - 1));
    else if (event.key === "ArrowUp") setActive((a) => Math.max(a - 1, 0));
    else if (event.key === "Enter" && shown[active]) onPick(shown[active].type);
    else return;
    event.preventDefault();
  };

  return (
    <div className="gk-search nodrag nowheel" style={{ left, top }} data-search={from ? `${from.dir}:${from.type}` : "any"}>
      <input
        ref={input}
        value={query}
        placeholder={from ? `node types that take ${from.type}…` : "search node types…"}
        onChange={(e) => setQuery(e.target.value)}
        onKeyDown={onKeyDown}
        aria-label="Search node types"
      />
      <ul role="listbox">
        {shown.map((entry, i) => (
          <li
            key={entry.type}
            role="option"
            aria-selected={i === active}
            className={i === active ? "gk-active" : ""}
            data-type={entry.type}
            onMouseEnter={() => setActive(i)}
            onMouseDown={(e) => {
              e.preventDefault();
              onPick(entry.type);
            }}
            title={entry.doc}
          >
            <span className="gk-search-title">{entry.title}</span>
            <span className="gk-search-type">{entry.type}</span>
          </li>
        ))}
        {!shown.length && <li className="gk-empty">no node type matches</li>}
      </ul>
    </div>
  );
}
