import t from 'tap';
import { parseQuantity } from '../../cluster/quantity.js';

t.test('parses kubernetes quantities', async (t) => {
  t.equal(parseQuantity('4'), 4);
  t.equal(parseQuantity('500m'), 0.5);
  t.equal(parseQuantity('16Gi'), 16 * 2 ** 30);
  t.equal(parseQuantity('1e3'), 1000);
  t.equal(parseQuantity('2k'), 2000);
  t.ok(Number.isNaN(parseQuantity('four')));
  t.ok(Number.isNaN(parseQuantity(undefined)));
});
