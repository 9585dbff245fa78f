#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A pthread mutex with two condition variables: the writer waits on `work`, producers and flushers on
/// `progress`. Swift's `Mutex` has no condition variables, and the writer needs to sleep without spinning.
final class ConditionLock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let workCondition: UnsafeMutablePointer<pthread_cond_t>
    private let progressCondition: UnsafeMutablePointer<pthread_cond_t>

    init() {
        mutex = .allocate(capacity: 1)
        workCondition = .allocate(capacity: 1)
        progressCondition = .allocate(capacity: 1)
        // Adaptive: a producer that finds the lock held (its holder copies one line) spins briefly instead of
        // sleeping in the kernel at once.
        var attributes = pthread_mutexattr_t()
        pthread_mutexattr_init(&attributes)
        pthread_mutexattr_settype(&attributes, Int32(PTHREAD_MUTEX_ADAPTIVE_NP))
        pthread_mutex_init(mutex, &attributes)
        pthread_mutexattr_destroy(&attributes)
        pthread_cond_init(workCondition, nil)
        pthread_cond_init(progressCondition, nil)
    }

    deinit {
        pthread_cond_destroy(progressCondition)
        pthread_cond_destroy(workCondition)
        pthread_mutex_destroy(mutex)
        progressCondition.deallocate()
        workCondition.deallocate()
        mutex.deallocate()
    }

    @inline(__always) func lock() { pthread_mutex_lock(mutex) }
    @inline(__always) func unlock() { pthread_mutex_unlock(mutex) }

    /// Waits for `signalWork`; the lock must be held.
    func waitForWork() { pthread_cond_wait(workCondition, mutex) }

    /// Waits for `signalWork`, at most `seconds`; the lock must be held.
    func waitForWork(seconds: Double) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let nanos = Int(now.tv_nsec) + Int(seconds.truncatingRemainder(dividingBy: 1) * 1e9)
        var deadline = timespec()
        deadline.tv_sec = now.tv_sec + time_t(seconds) + time_t(nanos / 1_000_000_000)
        deadline.tv_nsec = nanos % 1_000_000_000
        pthread_cond_timedwait(workCondition, mutex, &deadline)
    }

    func signalWork() { pthread_cond_signal(workCondition) }

    /// Waits for `broadcastProgress`; the lock must be held.
    func waitForProgress() { pthread_cond_wait(progressCondition, mutex) }

    func broadcastProgress() { pthread_cond_broadcast(progressCondition) }
}
