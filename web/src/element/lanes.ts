/** Which lanes (one column per model) the element shows, in which order. Pure. */

import type { ModelInfo } from "../client/frames.js";
import type { Turn } from "../client/room-state.js";

/** Model ids from the `models` attribute: separated by commas and/or spaces. */
export function parseModelList(value: string | null): string[] {
  if (!value) return [];
  return [...new Set(value.split(/[\s,]+/).filter(Boolean))];
}

/**
 * The lanes: the models prompts go to (the attribute's, else the server's defaults), then any
 * other model that answered in the conversation, in order of first answer, so that history
 * never loses its column.
 */
export function laneOrder(
  selected: string[],
  models: readonly ModelInfo[],
  turns: readonly Turn[],
): string[] {
  const lanes = new Set(selected.length > 0 ? selected : defaultModels(models));
  for (const turn of turns) for (const reply of turn.replies) lanes.add(reply.lane);
  return [...lanes];
}

export function defaultModels(models: readonly ModelInfo[]): string[] {
  const marked = models.filter((model) => model.default).map((model) => model.id);
  if (marked.length > 0) return marked;
  return models.slice(0, 1).map((model) => model.id);
}
