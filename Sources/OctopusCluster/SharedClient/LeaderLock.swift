import CShims
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Leadership of a cluster client: an exclusive `flock` on `<base>.lock`. The kernel releases it when its holder
/// dies, so a follower blocked on it takes over at once, with no timeout to wait out; and two leaders never hold it at
/// once. Each leadership takes the next term from `<base>.term` (read, incremented and written while holding the lock).
final class LeaderLock: @unchecked Sendable {
    let path: String
    let termPath: String
    private let lock = NSLock()
    private var fd: Int32 = -1
    /// The thread blocked in `flock` in ``acquireWaiting(cancelled:)``, while it is (cleared under `lock` before the
    /// thread ends, so that it is never signalled after it has gone).
    private var waiter: UInt?

    init(base: String) {
        path = base + ".lock"
        termPath = base + ".term"
    }

    /// Takes the lock if it is free; true when this process now leads.
    func tryAcquire() -> Bool {
        acquire(blocking: false)
    }

    /// Waits on a thread of its own, blocked in `flock` (the kernel wakes it the moment the holder dies), until the
    /// lock is this process's; false when `cancelled` says to stop: checked whenever the wait is interrupted
    /// (``stopWaiting()``) and when it ends (a cancelled waiter that gets the lock gives it straight back).
    func acquireWaiting(cancelled: @escaping @Sendable () -> Bool) async -> Bool {
        await withCheckedContinuation { continuation in
            let thread = Thread { [self] in
                octopus_name_thread("cc-leader-wait")
                octopus_make_interruptible()
                let opened = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
                guard opened >= 0 else {
                    continuation.resume(returning: false)
                    return
                }
                lock.withLock { waiter = octopus_current_thread() }
                var locked = false
                while !cancelled() {
                    if flock(opened, LOCK_EX) == 0 {
                        locked = true
                        break
                    }
                    if errno != EINTR { break }
                }
                lock.lock()
                waiter = nil
                let keep = locked && !cancelled() && fd < 0
                if keep { fd = opened }
                lock.unlock()
                if !keep {
                    if locked { flock(opened, LOCK_UN) }
                    close(opened)
                }
                continuation.resume(returning: keep)
            }
            thread.stackSize = 64 * 1024
            thread.start()
        }
    }

    /// Ends a wait in ``acquireWaiting(cancelled:)`` whose `cancelled` now says true, and returns once its thread is
    /// done with the lock file. (A signal can land just before the thread enters `flock`: it is sent again until the
    /// thread has gone, for up to a second.)
    func stopWaiting() async {
        for _ in 0..<200 {
            let waiting = lock.withLock { () -> Bool in
                guard let waiter else { return false }
                _ = octopus_interrupt_thread(waiter)
                return true
            }
            if !waiting { return }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    private func acquire(blocking: Bool) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        if fd >= 0 { return true }
        let opened = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard opened >= 0 else { return false }
        guard flock(opened, blocking ? LOCK_EX : LOCK_EX | LOCK_NB) == 0 else {
            close(opened)
            return false
        }
        fd = opened
        return true
    }

    /// The next term: one more than the last leadership's. Call while holding the lock.
    func nextTerm() -> UInt64 {
        let previous = (try? String(contentsOfFile: termPath, encoding: .utf8)).flatMap { UInt64($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? 0
        let term = previous + 1
        let temporary = termPath + ".tmp-\(getpid())"
        let out = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        if out >= 0 {
            let bytes = Array("\(term)\n".utf8)
            _ = bytes.withUnsafeBytes { write(out, $0.baseAddress, $0.count) }
            fsync(out)
            close(out)
            rename(temporary, termPath)
        }
        return term
    }

    /// Gives leadership up.
    func release() {
        lock.lock()
        defer { lock.unlock() }
        if fd >= 0 {
            flock(fd, LOCK_UN)
            close(fd)
            fd = -1
        }
    }
}
