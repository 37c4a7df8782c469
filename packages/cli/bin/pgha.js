#!/usr/bin/env node
// Entry point of the `pgha` command; the compiled CLI lives in ../dist.
import { main } from '../dist/main.js';

await main(process.argv);
