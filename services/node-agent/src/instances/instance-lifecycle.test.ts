import { InstanceState } from '@shellwego/contracts/common/v1/workload_pb';
import { capturingLogger } from '@shellwego/testing/logger';
import { describe, expect, it } from 'vitest';
import type { InstanceEventInit } from '../session/scheduler-session.js';
import { InstanceLifecycle, type InstancePhase, LIFECYCLE, LifecycleError, PHASES, phaseOf } from './instance-lifecycle.js';

const TERMINAL: InstancePhase[] = ['STOPPED', 'FAILED', 'DETACHED'];

/** A declared path to `target` from where a lifecycle starts (breadth first through the table). */
function pathTo(target: InstancePhase): { start: 'ASSIGNED' | 'ADOPTING'; steps: InstancePhase[] } | undefined {
  for (const start of ['ASSIGNED', 'ADOPTING'] as const) {
    const seen = new Map<InstancePhase, InstancePhase[]>([[start, []]]);
    const queue: InstancePhase[] = [start];
    for (let phase = queue.shift(); phase !== undefined; phase = queue.shift()) {
      const steps = seen.get(phase) ?? [];
      if (phase === target) return { start, steps };
      for (const next of LIFECYCLE[phase].next) {
        if (!seen.has(next)) {
          seen.set(next, [...steps, next]);
          queue.push(next);
        }
      }
    }
  }
  return undefined;
}

function lifecycleAt(phase: InstancePhase) {
  const { logger, lines } = capturingLogger();
  const events: InstanceEventInit[] = [];
  const path = pathTo(phase);
  if (path === undefined) throw new Error(`${phase} is unreachable`);
  const lifecycle = new InstanceLifecycle({ instanceId: 'i-1', log: logger, report: (e) => events.push(e) }, path.start, InstanceState.HEALTHY);
  for (const step of path.steps) lifecycle.transition(step);
  events.length = 0;
  return { lifecycle, events, lines };
}

const names = (events: InstanceEventInit[]) => events.map((e) => InstanceState[e.state]);

describe('instance lifecycle table', () => {
  it('names each contract phase after the contract state it is, and declares nothing out of a terminal phase', () => {
    for (const phase of PHASES) {
      const state = LIFECYCLE[phase].state;
      if (state !== undefined) expect(InstanceState[state]).toBe(phase);
      if (state !== undefined) expect(phaseOf(state)).toBe(phase);
    }
    expect(PHASES.filter((phase) => LIFECYCLE[phase].next.length === 0)).toEqual(TERMINAL);
    expect(phaseOf(InstanceState.LOST)).toBeUndefined();
  });

  it('reaches every phase, and from every phase an end', () => {
    for (const phase of PHASES) {
      expect(pathTo(phase), phase).toBeDefined();
      const seen = new Set([phase]);
      const queue = [phase];
      for (let p = queue.shift(); p !== undefined; p = queue.shift()) {
        for (const next of LIFECYCLE[p].next.filter((n) => !seen.has(n))) {
          seen.add(next);
          queue.push(next);
        }
      }
      expect(
        [...seen].some((p) => TERMINAL.includes(p)),
        phase,
      ).toBe(true);
    }
  });

  it('lets every live phase that an order can find be stopped, failed and detached', () => {
    const held = ['ASSIGNED', 'ADOPTING'];
    for (const phase of PHASES.filter((p) => LIFECYCLE[p].live && !held.includes(p))) {
      expect(LIFECYCLE[phase].next, phase).toEqual(expect.arrayContaining(['STOPPING', 'FAILING', 'DETACHED']));
    }
    for (const phase of PHASES.filter((p) => !LIFECYCLE[p].live)) {
      expect(
        LIFECYCLE[phase].next.filter((next) => !TERMINAL.includes(next)),
        phase,
      ).toEqual([]);
    }
  });

  it('allows every declared transition', () => {
    let count = 0;
    for (const from of PHASES) {
      for (const to of LIFECYCLE[from].next) {
        const { lifecycle } = lifecycleAt(from);
        lifecycle.transition(to, 'why');
        expect(lifecycle.phase).toBe(to);
        count += 1;
      }
    }
    expect(count).toBe(PHASES.reduce((n, p) => n + LIFECYCLE[p].next.length, 0));
  });

  it('refuses every undeclared transition: throws, logs, changes and reports nothing', async () => {
    let refused = 0;
    for (const from of PHASES) {
      for (const to of PHASES.filter((p) => !LIFECYCLE[from].next.includes(p))) {
        const { lifecycle, events, lines } = lifecycleAt(from);
        const before = lifecycle.state;
        expect(lifecycle.can(to)).toBe(false);
        expect(() => lifecycle.transition(to, 'why')).toThrow(LifecycleError);
        expect(() => lifecycle.transition(to)).toThrow(`instance i-1: ${from} -> ${to} is not a declared lifecycle transition`);
        expect(lifecycle.phase).toBe(from);
        expect(lifecycle.state).toBe(before);
        expect(events).toEqual([]);
        await new Promise((resolve) => setImmediate(resolve));
        expect(lines.some((line) => line.includes('"level":50') && line.includes(`${from} -> ${to} is not a declared`))).toBe(true);
        refused += 1;
      }
    }
    // Every ordered pair, self-transitions included, is either declared or refused.
    expect(refused + PHASES.reduce((n, p) => n + LIFECYCLE[p].next.length, 0)).toBe(PHASES.length * PHASES.length);
  });
});

describe('instance lifecycle reports', () => {
  it('reports each change of the contract state once, in order, with its reason and exit code', () => {
    const { logger } = capturingLogger();
    const events: InstanceEventInit[] = [];
    const lifecycle = new InstanceLifecycle({ instanceId: 'i-1', log: logger, report: (e) => events.push(e) });
    expect(lifecycle.state).toBe(InstanceState.ASSIGNED);
    for (const phase of ['PULLING', 'BOOTING', 'STARTING', 'RUNNING', 'HEALTHY', 'RESTARTING', 'RUNNING', 'FAILING'] as const) lifecycle.transition(phase);
    expect(lifecycle.state).toBe(InstanceState.RUNNING);
    lifecycle.transition('FAILED', 'the workload exited with code 3', 3);
    expect(names(events)).toEqual(['PULLING', 'BOOTING', 'STARTING', 'RUNNING', 'HEALTHY', 'RUNNING', 'FAILED']);
    expect(events.every((e) => e.instanceId === 'i-1' && e.time !== undefined)).toBe(true);
    expect(events.at(-1)).toMatchObject({ reason: 'the workload exited with code 3', exitCode: 3 });
    expect([lifecycle.reason, lifecycle.exitCode]).toEqual(['the workload exited with code 3', 3]);
  });

  it('reports nothing for internal phases, nor for returning to the state the scheduler has', () => {
    const { logger } = capturingLogger();
    const events: InstanceEventInit[] = [];
    const report = (e: InstanceEventInit) => events.push(e);
    const adopted = new InstanceLifecycle({ instanceId: 'i-2', log: logger, report }, 'ADOPTING', InstanceState.RUNNING);
    expect(adopted.state).toBe(InstanceState.RUNNING);
    adopted.transition('RUNNING');
    adopted.transition('RESTARTING', 'refresh');
    adopted.transition('RUNNING', 'restarted with refreshed secrets');
    adopted.transition('DETACHED');
    expect(events).toEqual([]);
    expect(adopted.state).toBe(InstanceState.RUNNING);
  });
});
