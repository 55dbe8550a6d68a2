// ONNX Runtime peer for `make bench` (npm onnxruntime-node, CPU execution provider): runs the vision tower
// exported by tests/bench_engine_models.py, answering "vision B N" lines on stdin with
// "vision B SECONDS_PER_FORWARD" and "rss" with the peak RSS in kB.
// Usage: node bench_engine_ort.js ORT_MODULE_DIR MODEL.onnx IMAGE_SIZE THREADS
const path = require('path');
const readline = require('readline');
const [ortDir, onnxPath, sizeArg, threadsArg] = process.argv.slice(2);
const ort = require(path.resolve(ortDir, 'node_modules', 'onnxruntime-node'));
const S = parseInt(sizeArg, 10), threads = parseInt(threadsArg, 10);

async function main() {
  const session = await ort.InferenceSession.create(onnxPath, {
    executionProviders: ['cpu'], intraOpNumThreads: threads, interOpNumThreads: 1,
    graphOptimizationLevel: 'all', executionMode: 'sequential',
  });
  console.log('ready');
  const rl = readline.createInterface({ input: process.stdin });
  let seed = 7;
  for await (const line of rl) {
    const parts = line.trim().split(/\s+/);
    if (parts[0] === 'rss') {
      console.log(`rss ${process.resourceUsage().maxRSS}`);
    } else if (parts.length === 3 && parts[0] === 'vision') {
      const B = parseInt(parts[1], 10), n = parseInt(parts[2], 10);
      const data = new Float32Array(B * 3 * S * S);
      for (let i = 0; i < data.length; i++) { seed = (seed * 1664525 + 1013904223) >>> 0; data[i] = (seed >>> 8) / 8388608 - 1; }
      const feeds = { pixels: new ort.Tensor('float32', data, [B, 3, S, S]) };
      const t = process.hrtime.bigint();
      for (let i = 0; i < n; i++) await session.run(feeds);
      const dt = Number(process.hrtime.bigint() - t) / 1e9 / n;
      console.log(`vision ${B} ${dt.toFixed(6)}`);
    } else {
      console.log('error unknown request');
    }
  }
}
main().catch((e) => { console.error(`bench_engine_ort.js: ${e.message}`); process.exit(1); });
