// Debian's chromium as every browser script here starts it: headless, with the flags that
// keep it from reaching for the network this machine does not have (background networking,
// component updates), and without the sandbox a root session cannot give it.

import { chromium } from 'playwright-core';

export function launch() {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
}
