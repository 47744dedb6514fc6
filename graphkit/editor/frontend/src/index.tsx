// The Streamlit component (components v2): one React root per mounted canvas, re-rendered
// with each new render's data; edits go back to Python as the "edit" trigger.
import type { FrontendRenderer, FrontendRendererArgs } from "@streamlit/component-v2-lib";
import { createRoot, type Root } from "react-dom/client";
import "@xyflow/react/dist/style.css";
import "./canvas.css";
import { CanvasApp } from "./Canvas";
import { Outbox } from "./outbox";
import type { CanvasData, CanvasState, EditPayload } from "./types";

type Parent = FrontendRendererArgs["parentElement"];

// Streamlit may call a render's cleanup just before it renders the same element again (when
// two renders overlap); unmounting then would throw the canvas's state away. A cleanup only
// unmounts when no render of that element follows within this grace period.
const UNMOUNT_GRACE_MS = 1500;
const roots = new WeakMap<Parent, { root: Root; host: HTMLElement }>();
const unmounts = new WeakMap<Parent, ReturnType<typeof setTimeout>>();

// One outbox for the page (there is one canvas): its client id and the edits not yet
// applied by Python outlive a mount of the canvas.
let deliver: (payload: EditPayload) => void = () => undefined;
const outbox = new Outbox((payload) => deliver(payload));

const renderCanvas: FrontendRenderer<CanvasState, CanvasData> = ({ parentElement, data, setTriggerValue }) => {
  const pending = unmounts.get(parentElement);
  if (pending !== undefined) {
    clearTimeout(pending);
    unmounts.delete(parentElement);
  }
  deliver = (payload) => setTriggerValue("edit", payload);
  let mounted = roots.get(parentElement);
  if (!mounted) {
    const host = document.createElement("div");
    host.className = "gk-host";
    parentElement.appendChild(host);
    mounted = { root: createRoot(host), host };
    roots.set(parentElement, mounted);
  }
  mounted.root.render(<CanvasApp data={data} outbox={outbox} />);
  return () => {
    const timer = setTimeout(() => {
      unmounts.delete(parentElement);
      const current = roots.get(parentElement);
      if (current) {
        current.root.unmount();
        current.host.remove();
        roots.delete(parentElement);
      }
    }, UNMOUNT_GRACE_MS);
    unmounts.set(parentElement, timer);
  };
};

export default renderCanvas;
