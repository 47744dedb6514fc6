import { createContext } from "react";

export interface CanvasTools {
  accepts: Record<string, string[]>;
  colours: Record<string, string>;
  /** Pick up the link into an input (a drag that starts on a connected input). */
  pickUp: (node: string, port: string, clientX: number, clientY: number) => void;
}

export const CanvasContext = createContext<CanvasTools>({
  accepts: {},
  colours: {},
  pickUp: () => undefined,
});

/** Whether an output of type ``from`` may feed an input of type ``to`` (Python's table). */
export function feeds(accepts: Record<string, string[]>, from: string, to: string): boolean {
  return (accepts[from] ?? []).includes(to);
}
