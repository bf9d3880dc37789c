/** Entry point of bin/msb-agentd.js. */
import { main } from './main.js';

await main();
