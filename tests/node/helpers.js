'use strict'
// Shared by the node:test files (not a test file itself).

const path = require('node:path')
const { spawn } = require('node:child_process')

const ROOT = path.resolve(__dirname, '..', '..')

/** Options for clients pointed at a sandbox: no pacing, short timeout, tiny backoff. */
const FAST = { timeout: 5000, backoff: { baseMs: 10, maxMs: 50 } }

/** Runs `node args...` and resolves with {code, signal, stdout, stderr}. A child that has not
 * exited after `limitMs` (a generous bound: it only catches hangs) is killed, and `hung` is set. */
function runNode(args, { env, cwd = ROOT, limitMs = 60000, input } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd, env: { ...process.env, ...env }, stdio: 'pipe' })
    let stdout = ''
    let stderr = ''
    let hung = false
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => {
      hung = true
      child.kill('SIGKILL')
    }, limitMs)
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr, hung })
    })
    child.stdin.end(input ?? '')
  })
}

module.exports = { ROOT, FAST, runNode }
