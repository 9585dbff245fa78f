import CShims
import Foundation

/// One background thread that finishes rolls (naming, compressing, retention) in the order they were asked for,
/// so gzip never runs on a writer's thread and the renames of one appender never race each other.
final class MaintenanceQueue: @unchecked Sendable {
    private let lock = ConditionLock()
    private var jobs: [@Sendable () -> Void] = []
    private var running = false
    private var stopping = false
    private var stopped = false

    init() {
        let thread = Thread { [self] in
            octopus_name_thread("octopus-maint")
            self.run()
        }
        thread.start()
    }

    func enqueue(_ job: @escaping @Sendable () -> Void) {
        lock.lock()
        defer { lock.unlock() }
        if stopped {
            job()  // after shutdown, finish synchronously rather than lose a rolled file's naming
            return
        }
        jobs.append(job)
        lock.signalWork()
    }

    /// Returns once every job enqueued before the call has finished.
    func waitUntilIdle() {
        lock.lock()
        defer { lock.unlock() }
        while (!jobs.isEmpty || running) && !stopped { lock.waitForProgress() }
    }

    /// Finishes every queued job, then stops the thread.
    func shutdown() {
        lock.lock()
        defer { lock.unlock() }
        stopping = true
        lock.signalWork()
        while !stopped { lock.waitForProgress() }
    }

    private func run() {
        // Compression yields to the threads that log: on a busy machine, archiving waits, logging does not.
        _ = octopus_lower_thread_priority()
        lock.lock()
        while true {
            while jobs.isEmpty && !stopping { lock.waitForWork() }
            if jobs.isEmpty && stopping { break }
            let job = jobs.removeFirst()
            running = true
            lock.unlock()
            job()
            lock.lock()
            running = false
            lock.broadcastProgress()
        }
        stopped = true
        lock.broadcastProgress()
        lock.unlock()
    }
}
