/**
 * Digests (blobs or images) that running operations need, so garbage
 * collection leaves them alone. A collection also sees everything held at
 * any moment while it ran (`track`), not only what is held when it looks:
 * an import that pins, commits and releases between two of its steps must
 * still count.
 */
export class InUse {
  private readonly counts = new Map<string, number>();
  private readonly trackers = new Set<Set<string>>();

  /** Holds `digests` until the returned function is called (calling it again does nothing). */
  hold(digests: Iterable<string>): () => void {
    const held = [...new Set(digests)];
    for (const d of held) {
      this.counts.set(d, (this.counts.get(d) ?? 0) + 1);
      for (const t of this.trackers) t.add(d);
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      for (const d of held) {
        const n = (this.counts.get(d) ?? 1) - 1;
        if (n <= 0) this.counts.delete(d);
        else this.counts.set(d, n);
      }
    };
  }

  has(digest: string): boolean {
    return this.counts.has(digest);
  }

  /** Starts recording every digest held from now on, plus those held now; `stop` ends it. */
  track(): { seen: ReadonlySet<string>; stop: () => void } {
    const seen = new Set(this.counts.keys());
    this.trackers.add(seen);
    return { seen, stop: () => this.trackers.delete(seen) };
  }
}
