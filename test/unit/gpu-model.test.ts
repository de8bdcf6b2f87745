import t from 'tap';
import { modelAccepted, modelMatches, parseModelList } from '../../placement/gpu-model.js';

t.test('short aliases match GFD product names by whole tokens', async (t) => {
  t.ok(modelMatches('NVIDIA-A100-SXM4-80GB', 'a100'));
  t.ok(modelMatches('NVIDIA-A100-SXM4-80GB', 'A100-SXM4'));
  t.ok(modelMatches('NVIDIA-A100-SXM4-80GB', 'NVIDIA-A100-SXM4-80GB'), 'full product');
  t.notOk(modelMatches('NVIDIA-A10', 'a100'), 'a100 is not a10');
  t.notOk(modelMatches('NVIDIA-A100-SXM4-80GB', 'a10'), 'a10 is not a100');
  t.notOk(modelMatches('NVIDIA-A100-SXM4-40GB', 'a100-80gb'), 'memory variant must match');
  t.ok(modelMatches('Tesla-V100-SXM2-32GB', 'v100'));
  t.notOk(modelMatches('', 'a100'), 'unknown product never matches an alias');
});

t.test('lists and acceptance', async (t) => {
  t.same(parseModelList(' a100, h100 |l4 '), ['a100', 'h100', 'l4']);
  t.same(parseModelList(undefined), []);
  t.ok(modelAccepted('NVIDIA-H100-80GB-HBM3', ['a100', 'h100']));
  t.notOk(modelAccepted('NVIDIA-L4', ['a100', 'h100']));
  t.ok(modelAccepted('anything', []), 'no list accepts any model');
});
