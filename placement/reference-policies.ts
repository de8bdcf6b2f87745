// Reference policies that the trace simulator compares sluice's policies against (the
// baselines of the FGD paper, ATC '23). They are not offered to pods by the extender.
//
// random    1. any node the ask fits on, uniformly (the score is a fresh random number);
//           2. on the node, any GPU the share fits on, uniformly.
// best-fit  1. prefer the node left with the least free resources, summed over GPU, CPU
//              and memory, each divided by a cluster-wide scale (e.g. the largest node)
//              so that the dimensions weigh alike;
//           2. on the node, put a share on the fullest GPU it fits on (as binpack).
import { binpack, choicesFor, type Policy } from './policies.js';
import { WHOLE, freeMilli } from './types.js';

/** `rng` returns uniform numbers in [0, 1); pass a seeded one for reproducible runs. */
export function makeRandomPolicy(rng: () => number): Policy {
  return {
    name: 'random',
    scale: 'relative',
    choose(s, ask) {
      const c = choicesFor(s, ask);
      return c[Math.floor(rng() * c.length)] ?? { on: 'whole' };
    },
    score() {
      return rng();
    },
  };
}

export interface ResourceScale {
  gpuMilli: number;
  cpuMilli: number;
  memMiB: number;
}

export function makeBestFitPolicy(scale: ResourceScale): Policy {
  return {
    name: 'best-fit',
    scale: 'relative',
    choose: binpack.choose,
    score(node, ask) {
      const gpuLeft = freeMilli(node.gpus) - ask.count * Math.min(ask.milli, WHOLE);
      const cpuLeft = (node.cpuFreeMilli ?? 0) - (ask.cpuMilli ?? 0);
      const memLeft = (node.memFreeMiB ?? 0) - (ask.memMiB ?? 0);
      return -(gpuLeft / scale.gpuMilli + cpuLeft / scale.cpuMilli + memLeft / scale.memMiB);
    },
  };
}
