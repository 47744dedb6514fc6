// The Streamlit component (components v2): one React root per mounted canvas, re-rendered
// with each new render's data; edits go back to Python as the "edit" trigger.
import type { FrontendRenderer, FrontendRendererArgs } from "@streamlit/component-v2-lib";
import { createRoot, type Root } from "react-dom/client";
import "@xyflow/react/dist/style.css";
import "./canvas.css";
import { CanvasApp } from "./Canvas";
import type { CanvasData, CanvasState } from "./types";

const roots = new WeakMap<FrontendRendererArgs["parentElement"], { root: Root; host: HTMLElement }>();

const renderCanvas: FrontendRenderer<CanvasState, CanvasData> = ({ parentElement, data, setTriggerValue }) => {
  let mounted = roots.get(parentElement);
  if (!mounted) {
    const host = document.createElement("div");
    host.className = "gk-host";
    parentElement.appendChild(host);
    mounted = { root: createRoot(host), host };
    roots.set(parentElement, mounted);
  }
  mounted.root.render(<CanvasApp data={data} deliver={(payload) => setTriggerValue("edit", payload)} />);
  return () => {
    const current = roots.get(parentElement);
    if (current) {
      current.root.unmount();
      current.host.remove();
      roots.delete(parentElement);
    }
  };
};

export default renderCanvas;
