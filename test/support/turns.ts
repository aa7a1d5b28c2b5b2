/**
 * Counts the turns of the event loop (its check phases, by a chain of setImmediate) until
 * `stop()`, which returns the count (`now()`: the count so far): work that gives the loop a turn between slices shows
 * turns, work done in one turn none.
 */
export function countTurns(): { now(): number; stop(): number } {
  let turns = 0;
  let counting = true;
  const tick = () => {
    if (!counting) return;
    turns++;
    setImmediate(tick);
  };
  setImmediate(tick);
  return {
    now: () => turns,
    stop: () => {
      counting = false;
      return turns;
    },
  };
}
