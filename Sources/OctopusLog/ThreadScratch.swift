#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Per-thread memory for rendering lines: a line buffer reused by every log call of the thread (no allocation per
/// line), and a small cache of rendered timestamps (lines in the same millisecond copy the date instead of
/// computing it again). Plain memory behind a pthread key, freed when the thread exits; no locks, no reference
/// counting on the hot path.
struct ThreadScratch {
    static let dateSlots = 4
    static let dateBytes = 64

    var line: UnsafeMutablePointer<UInt8>
    var lineCapacity: Int
    var inUse: Bool
    var dateKeys: UnsafeMutablePointer<DateKey>
    var dateText: UnsafeMutablePointer<UInt8>
    var nextSlot: Int

    struct DateKey {
        var renderer: Int
        var seconds: Int64
        var milliseconds: Int32
        var length: Int32
    }

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key) { raw in
            guard let raw else { return }
            let scratch = raw.assumingMemoryBound(to: ThreadScratch.self)
            scratch.pointee.line.deallocate()
            scratch.pointee.dateKeys.deallocate()
            scratch.pointee.dateText.deallocate()
            scratch.deallocate()
        }
        return key
    }()

    /// This thread's scratch, made on first use.
    @inline(__always)
    static func current() -> UnsafeMutablePointer<ThreadScratch> {
        if let raw = pthread_getspecific(key) {
            return raw.assumingMemoryBound(to: ThreadScratch.self)
        }
        return make()
    }

    @inline(never)
    private static func make() -> UnsafeMutablePointer<ThreadScratch> {
        let keys = UnsafeMutablePointer<DateKey>.allocate(capacity: dateSlots)
        keys.initialize(repeating: DateKey(renderer: 0, seconds: 0, milliseconds: -1, length: 0), count: dateSlots)
        let scratch = UnsafeMutablePointer<ThreadScratch>.allocate(capacity: 1)
        scratch.initialize(
            to: ThreadScratch(
                line: .allocate(capacity: 4096),
                lineCapacity: 4096,
                inUse: false,
                dateKeys: keys,
                dateText: .allocate(capacity: dateSlots * dateBytes),
                nextSlot: 0
            ))
        pthread_setspecific(key, scratch)
        return scratch
    }
}

/// Gives each ``TimestampRenderer`` a number that is never reused, so a cached date can never be mistaken for
/// another renderer's.
let rendererSerials = Atomic<Int>(1)

extension LogBuffer {
    /// This thread's reusable line buffer, or a fresh one when the thread is already rendering (as when a user
    /// token itself logs). Give it back with ``releaseThreadBuffer()``.
    @inline(__always)
    static func acquireThreadBuffer() -> LogBuffer {
        let scratch = ThreadScratch.current()
        if scratch.pointee.inUse { return LogBuffer() }
        scratch.pointee.inUse = true
        return LogBuffer(borrowing: scratch)
    }

    /// Ends the use of a buffer from ``acquireThreadBuffer()``.
    @inline(__always)
    consuming func releaseThreadBuffer() {
        scratch?.pointee.inUse = false
    }
}
