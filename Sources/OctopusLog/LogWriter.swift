#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CShims
import Foundation
import Synchronization

/// What a writer does when its buffer is full.
public enum OverflowPolicy: String, Sendable, CaseIterable {
    /// The logging call waits until the writer has made room (nothing is lost).
    case block
    /// The event is dropped and counted; when the pressure ends the writer writes one line saying how many.
    case drop
}

/// How a writer buffers and writes.
public struct WriterOptions: Sendable, Hashable {
    /// The size of each of the writer's two buffers, in bytes. Memory used is at most twice this, plus one line; once
    /// the per-CPU lanes are on (several threads logging at once), each lane's buffers take an equal share of this
    /// size, and memory used is at most about four times it (the first buffers keep their pages), plus 256 KiB.
    public var bufferSize: Int
    public var overflow: OverflowPolicy
    /// Whether a durable write (an event at or above the appender's `syncLevel`) is also `fdatasync`ed, so it
    /// survives a power loss and not only a crash of the process.
    public var fsync: Bool
    /// The permission bits of a file the writer creates (before the umask), default `0o640`.
    public var mode: UInt32
    /// How often, at most, the writer checks that its path still names the file it has open (the file or its
    /// directory removed, or moved away by an external tool), and reopens it when not. Zero checks every batch.
    public var fileCheckInterval: Double
    /// How long, at most, the writer waits for more lines after the first arrives, so that one `write` carries
    /// many lines under load. Flushes, durable lines, a full buffer and shutdown do not wait. Zero writes at once.
    public var batchDelay: Double
    /// log4js's `flags: w`: the file is emptied when it is opened at start (by a process writing it alone; in a
    /// cluster the master empties it before any process opens it).
    public var truncate: Bool

    public init(
        bufferSize: Int = 1 << 20,
        overflow: OverflowPolicy = .block,
        fsync: Bool = false,
        mode: UInt32 = 0o640,
        fileCheckInterval: Double = 1,
        batchDelay: Double = 0.001,
        truncate: Bool = false
    ) {
        self.truncate = truncate
        self.bufferSize = bufferSize
        self.overflow = overflow
        self.fsync = fsync
        self.mode = mode
        self.fileCheckInterval = fileCheckInterval
        self.batchDelay = batchDelay
    }
}

/// How tests have a writer behave.
struct WriterTestOptions {
    /// Callers claim in their CPU's lane from the first line, rather than once they collide.
    var lanesFromStart = false
    /// The writer turns the lanes on at its pass of this number (counting from 1), whether callers collide or not.
    var lanesAtPass: Int?
    /// How long the writer sleeps after swapping the first lane's buffers, before the others' (lines are then
    /// claimed in old and new buffers at once): in every pass, or with `lanesAtPass` in that pass only.
    var pauseBetweenSwaps: Double = 0
}

/// What an appender has done, readable at any time from code.
public struct AppenderCounters: Sendable, Hashable {
    /// Lines written (handed to the kernel).
    public var lines: Int = 0
    /// Bytes written.
    public var bytes: Int = 0
    /// `write` calls that carried lines (one per batch).
    public var batches: Int = 0
    /// Lines dropped because the buffer was full (`overflow: drop`) or the writer was already shut down.
    public var drops: Int = 0
    /// Failed writes (disk full, file unreachable…).
    public var writeErrors: Int = 0
    /// Lines lost to failed writes.
    public var lostLines: Int = 0
    /// Files rolled (by size, by period, or on request).
    public var rolls: Int = 0
    /// Rolled files compressed.
    public var archived: Int = 0
    /// Rolled files that could not be compressed (reported on stderr; the plain file is kept).
    public var archiveErrors: Int = 0

    public init() {}
}

/// Where a writer's bytes go.
enum WriterTarget: Sendable, Hashable {
    /// A file; `period` tells apart appenders whose hot files carry their own date pattern in their names.
    case file(String, period: String? = nil)
    case descriptor(Int32, name: String)

    var name: String {
        switch self {
        case .file(let path, _): path
        case .descriptor(_, let name): name
        }
    }
}

/// The one writer for a file (or stdout/stderr) in this process.
///
/// Callers hand over whole lines they rendered (``submit(_:lines:durable:)``), or a line's timestamp and message for
/// the writer to render with a format registered before (``submitDeferred(format:timestamp:message:durable:)``);
/// either is copied into one of two buffers. A background thread swaps the buffers, copies or renders the full one's
/// lines into an output that stays in its cache, and writes that with a `write` per output (whole lines only, with
/// `O_APPEND`, so lines from several processes sharing the file never tear).
///
/// A line takes no lock and one atomic operation: the caller claims a record in the filling buffer with one
/// compare-and-swap on the buffer's state word (its generation and the bytes claimed in it), copies the line in after
/// a header, and stores the line's length in the header last, with release ordering: that store says the record is
/// complete. The writer swaps by moving the state to the next generation (under `lock`, so waiters see a consistent
/// generation), walks the old buffer's records in the order they were claimed, waiting for any whose header is not
/// stored yet, copies or renders their lines, writes them, and zeroes what was used. Everything slow (a
/// full buffer, a line larger than a buffer, shutdown, waiting for a write) goes through `lock`; the file descriptor
/// and error-episode state belong to the writer thread alone.
///
/// Lanes: callers on several cores claiming in one buffer make its state word and its cache lines travel between the
/// cores on every line. Once callers keep colliding in their claims, the writer turns on one lane per CPU (a state
/// word and two buffers each), for good: a caller claims in the lane of the CPU it runs on, and stamps its record with
/// the CPU's time-stamp counter (RDTSCP, which also says the CPU). The writer swaps every lane at once and writes
/// the records in stamp order, holding back to its next pass those stamped after the pass began. The file's order is
/// then the order in which the threads saw each other's lines: each thread's lines in its order, and a line logged
/// after another thread's line was seen (a lock, a queue, a task that moved to another thread) after it. Only where
/// the kernel keeps time with that counter (synchronised between CPUs); elsewhere one lane serves.
final class LogWriter: @unchecked Sendable {
    let target: WriterTarget
    let options: WriterOptions
    /// Rolling by size and period, for rotated files.
    let rotator: Rotator?
    /// Whether this process rolls the file, or another one does (see ``RotationCoordination``).
    let coordination: RotationCoordination
    private let clock: LogClock
    private let lock = ConditionLock()
    private let dropNotice: @Sendable (Int) -> [UInt8]

    /// The lanes: one per CPU (up to `maxLanes`) where stamps order events across CPUs, else one. A caller claims
    /// its record in the lane of the CPU it runs on, so that callers on different cores do not take turns with one
    /// claim word and one buffer's cache lines.
    private let laneCount: Int
    /// Each lane's state word, `laneStride` bytes apart (a cache line each): the bytes claimed in the lane's filling
    /// buffer (low 34 bits), the generation (the next 28 bits, the same in every lane while `lock` is free), `closed`
    /// (bit 62: callers take the slow path, at shutdown or while a line larger than a buffer waits for its turn) and
    /// `lanesBit` (bit 63).
    private let laneStates: UnsafeMutableRawPointer
    /// Two buffers per lane (lane 0's `capacity` bytes each, the others' `laneCapacity`): lane `l`'s filling one is
    /// `laneBuffers[2 * l + generation & 1]`.
    private let laneBuffers: UnsafeMutablePointer<UnsafeMutablePointer<UInt8>>
    /// The size of lane 0's buffers, where every line goes until the lanes are on.
    private let capacity: Int
    /// With the lanes on, the bytes a lane's buffer takes (lane 0's included): the buffer size split between the lanes.
    private let laneCapacity: Int
    /// A record: the line's length plus one (zero until the line is in; stored last, with release ordering), the
    /// number of lines, the record's order stamp (once the lanes are on), then the bytes, the whole rounded up to
    /// `recordAlignment`.
    private static let headerSize = 8
    private static let stampedHeaderSize = 16
    /// In a record's line count: the record holds a line for the writer to render (``submitDeferred``): the
    /// timestamp's seconds (8 bytes) and nanoseconds (4), the format's number (4), then the message.
    private static let deferredBit: UInt32 = 1 << 31
    private static let deferredHeaderSize = 16
    /// What a line rendered from a record may add to its record's bytes, at most, in all but rare formats (a date,
    /// a prefix): the output is written out before a record when it may not have this much room left.
    private static let renderingRoom = 512
    private static let recordAlignment = 8
    private static let laneStride = 64
    private static let maxLanes = 16

    // Owned by the writer thread, with several lanes: the records of a pass in stamp order, the lines a pass leaves
    // for the next (stamped after it began), and the bytes it writes.
    private var stampOrder = StampOrder()
    private var carried = ByteStore()
    private var carrying = ByteStore()
    /// The bytes claimed in each lane's old buffers, at the pass's swap.
    private let swappedClaims: UnsafeMutablePointer<Int>
    /// The most bytes the writer collects before it writes them (see `run`).
    private let outputCapacity: Int
    private let pauseBetweenSwaps: Double
    private let lanesAtPass: Int?
    /// The writer's passes so far (for `lanesAtPass`).
    private var passes = 0
    /// Raised by the writer while it sleeps with an empty buffer, or lets a batch grow: the first caller to find one
    /// up takes it down and wakes the writer (`wakesWriter`).
    private let writerIdle = Atomic<Bool>(false)
    private let writerCoalescing = Atomic<Bool>(false)

    // Guarded by `lock`.
    /// The formats of ``submitDeferred``, by number − 1, and the memory of their programs.
    private var formats: [DeferredFormat] = []
    private var formatArena = RawArena()
    /// `formats` unretained, as the writer reads them: every table made (the last is current), freed with the writer.
    private var formatTables: [UnsafeMutableBufferPointer<Unmanaged<DeferredFormat>>] = []
    private var writtenGeneration = LogWriter.generationMask
    private var syncedGeneration = LogWriter.generationMask
    private var fsyncRequested = false
    private var passRequested = false
    private var reopenRequested = false
    private var rollRequested = false
    private var sizeCheckRequested = false
    private var oversizedLine: [UInt8]?
    private var oversizedLines = 0
    private var stopping = false
    private var stopped = false
    private var waiters = 0
    private var counters = AppenderCounters()
    private var unreportedDrops = 0
    private var firstUnreportedDrop: Double = 0

    // Owned by the writer thread.
    private var fd: Int32 = -1
    /// The file open now (changes with the period when the hot file carries it).
    private var currentPath: String
    /// Its size, for size rolls.
    private var fileSize = 0
    /// The period the hot file covers (dated rotation).
    private var periodStart: Int64 = 0
    private var periodEnd: Int64 = .max
    private var openedIdentity: (dev: UInt64, ino: UInt64)?
    private var lastFileCheck: Double = 0
    private var failing = false
    private var failedWrites = 0
    private var linesLostInEpisode = 0
    /// Follower: when it last asked the owner to roll (monotonic seconds).
    private var lastRollRequest: Double = 0

    private static let offsetBits: UInt64 = 34
    private static let offsetMask: UInt64 = (1 << offsetBits) - 1
    private static let generationMask: UInt64 = (1 << 28) - 1
    private static let closedBit: UInt64 = 1 << 62
    /// In every lane's word once the lanes are on (from the generation the writer turned them on in).
    private static let lanesBit: UInt64 = 1 << 63
    /// Claims lost to other callers within one pass that turn the lanes on.
    private static let collisionsForLanes: UInt64 = 16

    /// Opens the target (creating parent directories) and starts the writer thread.
    ///
    /// - Parameter dropNotice: renders the line that reports `n` dropped lines, in the appender's layout.
    init(
        target: WriterTarget,
        options: WriterOptions,
        rotator: Rotator? = nil,
        coordination: RotationCoordination = .alone,
        clock: LogClock = .system,
        testOptions: WriterTestOptions = WriterTestOptions(),
        dropNotice: @escaping @Sendable (Int) -> [UInt8]
    ) throws(LogSystemError) {
        self.pauseBetweenSwaps = testOptions.pauseBetweenSwaps
        self.lanesAtPass = testOptions.lanesAtPass
        self.target = target
        self.options = options
        self.rotator = rotator
        self.coordination = coordination
        self.clock = clock
        self.dropNotice = dropNotice
        self.currentPath = target.name
        // Whole records, and lengths that fit the header's 32 bits.
        let capacity = min(max(options.bufferSize, 64), Int(UInt32.max) - 64) / Self.recordAlignment * Self.recordAlignment
        self.capacity = capacity
        let laneCount = Self.lanesForThisMachine
        self.laneCount = laneCount
        let laneCapacity = laneCount == 1 ? capacity : max(64, capacity / laneCount / Self.recordAlignment * Self.recordAlignment)
        self.laneCapacity = laneCapacity
        self.outputCapacity = min(capacity, 1 << 18)
        // Zeroed pages the kernel maps on first touch: a lane no thread uses costs no memory.
        var buffers: [UnsafeMutablePointer<UInt8>] = []
        for index in 0..<2 * laneCount {
            guard let buffer = calloc(index < 2 ? capacity : laneCapacity, 1) else {
                for buffer in buffers { free(buffer) }
                throw LogSystemError(
                    .cannotOpen, "cannot allocate the buffers of \(target.name) (bufferSize \(options.bufferSize) bytes)")
            }
            buffers.append(buffer.assumingMemoryBound(to: UInt8.self))
        }
        laneBuffers = .allocate(capacity: 2 * laneCount)
        laneBuffers.initialize(from: buffers, count: buffers.count)
        laneStates = UnsafeMutableRawPointer.allocate(
            byteCount: (laneCount + 1) * Self.laneStride, alignment: Self.laneStride)
        laneStates.initializeMemory(as: UInt8.self, repeating: 0, count: (laneCount + 1) * Self.laneStride)
        swappedClaims = .allocate(capacity: laneCount)
        swappedClaims.initialize(repeating: 0, count: laneCount)
        switch target {
        case .descriptor(let descriptor, _):
            fd = descriptor
        case .file(let path, _):
            let now = clock.now().seconds
            if let rotator {
                try Self.createDirectory(for: path)
                // Recovery renames and archives: the owner's work, never a follower's.
                if !coordination.isFollower { rotator.recover(now: now) }
                currentPath = rotator.hotPath(at: now)
                if let period = rotator.period {
                    periodStart = period.start(containing: now)
                    periodEnd = period.next(after: periodStart)
                }
            }
            if options.truncate, case .alone = coordination.mode { truncate(currentPath, 0) }
            switch Self.open(path: currentPath, mode: options.mode) {
            case .success(let (descriptor, identity, size)):
                fd = descriptor
                openedIdentity = identity
                fileSize = size
            case .failure(let error):
                throw error  // deinit frees the buffers
            }
        }
        lastFileCheck = Self.monotonicSeconds()
        if testOptions.lanesFromStart && laneCount > 1 {
            octopus_store_u64(laneMode, 1)
            updateLanes { $0 | Self.lanesBit }
        }
        let thread = Thread { [self] in
            octopus_name_thread("octopus-writer")
            self.run()
        }
        thread.start()
    }

    deinit {
        for index in 0..<2 * laneCount { free(laneBuffers[index]) }
        laneBuffers.deallocate()
        laneStates.deallocate()
        swappedClaims.deallocate()
        for table in formatTables { table.deallocate() }
        carried.deallocate()
        carrying.deallocate()
    }

    /// One lane per CPU where records can carry an order stamp, else one.
    static let lanesForThisMachine: Int = {
        guard octopus_order_stamps_usable() != 0 else { return 1 }
        return min(max(sysconf(Int32(_SC_NPROCESSORS_CONF)), 1), maxLanes)
    }()

    /// Lane `lane`'s state word (the first cache line holds the mode word and the collision count instead).
    @inline(__always)
    private func laneState(_ lane: Int) -> UnsafeMutableRawPointer { laneStates + (lane &+ 1) &* Self.laneStride }

    /// Nonzero once callers claim in their CPU's lane (read by every caller, written once).
    private var laneMode: UnsafeMutableRawPointer { laneStates }
    /// Claims lost to another caller's claim in lane 0 since the writer last looked (one lane only).
    private var collisions: UnsafeMutableRawPointer { laneStates + 8 }

    /// Whether callers claim in their CPU's lane.
    var lanesOn: Bool { octopus_load_u64(laneMode) != 0 }

    /// Copies one or more whole lines into the buffer. With `durable`, returns only once they are written (and
    /// `fdatasync`ed when the options say so).
    func submit(_ bytes: UnsafeBufferPointer<UInt8>, lines: Int = 1, durable: Bool = false) {
        submitRecord(.lines(bytes, count: lines), durable: durable)
    }

    /// Hands over a line for the writer to render with the format `format` (``registerFormat(layout:program:)``)
    /// from a copy of its timestamp and message: the caller's work is that copy. With `durable`, returns only once
    /// it is written.
    @inline(__always)
    func submitDeferred(format: UInt32, timestamp: LogTimestamp, message: UnsafeBufferPointer<UInt8>, durable: Bool) {
        submitRecord(.deferred(format: format, timestamp: timestamp, message: message), durable: durable)
    }

    /// What a caller hands over: whole lines, or a line for the writer to render. Plain values: nothing retained.
    private enum Submission {
        case lines(UnsafeBufferPointer<UInt8>, count: Int)
        case deferred(format: UInt32, timestamp: LogTimestamp, message: UnsafeBufferPointer<UInt8>)

        /// The bytes its record holds after the header.
        @inline(__always)
        var payload: Int {
            switch self {
            case .lines(let bytes, _): bytes.count
            case .deferred(_, _, let message): LogWriter.deferredHeaderSize + message.count
            }
        }

        /// The record header's line count.
        @inline(__always)
        var linesWord: UInt32 {
            switch self {
            case .lines(_, let count): UInt32(truncatingIfNeeded: count) & ~LogWriter.deferredBit
            case .deferred: 1 | LogWriter.deferredBit
            }
        }

        var lineCount: Int { Int(linesWord & ~LogWriter.deferredBit) }

        /// Writes the payload at `payload`.
        @inline(__always)
        func fill(_ payload: UnsafeMutablePointer<UInt8>) {
            switch self {
            case .lines(let bytes, _):
                if let source = bytes.baseAddress { payload.update(from: source, count: bytes.count) }
            case .deferred(let format, let timestamp, let message):
                let raw = UnsafeMutableRawPointer(payload)
                raw.storeBytes(of: timestamp.seconds, as: Int64.self)
                raw.storeBytes(of: timestamp.nanoseconds, toByteOffset: 8, as: Int32.self)
                raw.storeBytes(of: format, toByteOffset: 12, as: UInt32.self)
                if let source = message.baseAddress {
                    (payload + LogWriter.deferredHeaderSize).update(from: source, count: message.count)
                }
            }
        }
    }

    /// Lock held: the line's bytes, rendered here for a line to render that does not fit a buffer.
    private func bytes(of submission: Submission) -> [UInt8] {
        switch submission {
        case .lines(let bytes, _): return Array(bytes)
        case .deferred(let format, let timestamp, let message):
            var line = LogBuffer()
            formats[Int(format) - 1].render(timestamp, message, into: &line)
            return Array(line.bytes())
        }
    }

    /// Registers a program of `layout` that the writer can render from a line's timestamp and message; returns its
    /// number, or 0 when the program reads more of an event (``PatternLayout/readsOnlyTimestampAndMessage(_:)``).
    /// The writer keeps what it registers for its life (one per logger label, level and appender).
    func registerFormat(layout: PatternLayout, program: PatternLayout.Program) -> UInt32 {
        guard PatternLayout.readsOnlyTimestampAndMessage(program) else { return 0 }
        lock.lock()
        defer { lock.unlock() }
        let format = DeferredFormat(
            layout: layout,
            program: RawProgram(pieces: formatArena.copy(program.pieces), literals: formatArena.copy(program.literals)))
        if formatTables.last.map({ formats.count == $0.count }) ?? true {
            // A table twice as large; the old one stays until the writer ends (a pass may be reading it).
            let table = UnsafeMutableBufferPointer<Unmanaged<DeferredFormat>>.allocate(capacity: max(16, 2 * formats.count))
            if let last = formatTables.last { _ = table.initialize(fromContentsOf: last) }
            formatTables.append(table)
        }
        formatTables[formatTables.count - 1][formats.count] = .passUnretained(format)
        formats.append(format)
        return UInt32(formats.count)
    }

    /// Claims a record for what the caller hands over in the filling buffer, copies it in, and says it is in.
    @inline(__always)
    private func submitRecord(_ submission: Submission, durable: Bool) {
        let payload = submission.payload
        var lanes = octopus_load_u64(laneMode) != 0
        var size = UInt64(Self.recordSize(payload, stamped: lanes))
        var lane = 0
        var stamp: UInt64 = 0
        if lanes { (stamp, lane) = laneAndStamp() }
        var state = laneState(lane)
        var word = octopus_load_u64(state)
        var lanesTried = 1
        while true {
            if word & Self.lanesBit != 0 && !lanes {
                // The writer has just turned the lanes on: claim as they ask.
                lanes = true
                size = UInt64(Self.recordSize(payload, stamped: true))
                (stamp, lane) = laneAndStamp()
                state = laneState(lane)
                word = octopus_load_u64(state)
                continue
            }
            if word & Self.lanesBit == 0 && lanes {
                // The writer is turning the lanes on and has not swapped this lane yet: its filling buffer belongs
                // to the last generation of one lane, whose lines all go to lane 0, unstamped. Lane 0 is swapped
                // first: claim there, stamped once it is swapped, unstamped before.
                if lane != 0 {
                    lane = 0
                    state = laneState(0)
                    word = octopus_load_u64(state)
                } else {
                    lanes = false
                    size = UInt64(Self.recordSize(payload, stamped: false))
                }
                continue
            }
            let claimed = word & Self.offsetMask
            guard word & Self.closedBit == 0, claimed + size <= UInt64(limit(word)) else {
                if lanes && word & Self.closedBit == 0 && lanesTried < laneCount {
                    // This lane is full: any other has room for it as well (the stamp, not the lane, orders lines).
                    lanesTried += 1
                    lane = lane &+ 1 == laneCount ? 0 : lane &+ 1
                    state = laneState(lane)
                    word = octopus_load_u64(state)
                    continue
                }
                lanesTried = 0
                guard let retry = slowSubmit(submission, durable: durable, lane: lane) else { return }
                word = retry
                continue
            }
            var found = word
            if !octopus_compare_exchange_u64(state, &found, word + size) {
                // Another caller claimed at the same moment (not the writer's swap): count it, while one lane serves.
                if !lanes && laneCount > 1 && (found ^ word) >> Self.offsetBits == 0 { octopus_add_u64(collisions, 1) }
                word = found
                continue
            }
            let generation = word >> Self.offsetBits & Self.generationMask
            let record = laneBuffers[lane &* 2 &+ Int(generation & 1)] + Int(claimed)
            UnsafeMutableRawPointer(record + 4).storeBytes(of: submission.linesWord, as: UInt32.self)
            if lanes { UnsafeMutableRawPointer(record + 8).storeBytes(of: stamp, as: UInt64.self) }
            submission.fill(record + (lanes ? Self.stampedHeaderSize : Self.headerSize))
            octopus_store_release_u32(record, UInt32(payload + 1))
            // The next lines' place is in the other core's cache (the writer cleared it) or further: have it on its
            // way while this caller does other work, rather than wait for it in the next copy.
            octopus_prefetch_for_write(record + Int(size) + 64)
            octopus_prefetch_for_write(record + Int(size) + 128)
            if wakesWriter(atClaim: claimed + size, limit: limit(word)) { wakeWriter() }
            if durable { waitUntilDurable(generation) }
            return
        }
    }

    /// Whether this caller, whose line ends at `claim` in a buffer of `limit` bytes, is the one to wake the writer:
    /// the first to find it asleep with nothing to do, or the first past half the buffer while it lets a batch grow.
    /// One caller takes each flag down; the others go on without the lock (with every caller past half the buffer
    /// taking the lock to signal until the writer ran, four threads took it for one line in six, and one thread cut
    /// most batches short).
    @inline(__always)
    private func wakesWriter(atClaim claim: UInt64, limit: Int) -> Bool {
        // Sequentially consistent, after the claim: either the writer's look for work after raising the flag sees
        // this line, or this load sees the flag.
        if writerIdle.load(ordering: .sequentiallyConsistent) {
            return writerIdle.exchange(false, ordering: .sequentiallyConsistent)
        }
        return claim >= UInt64(limit / 2) && writerCoalescing.load(ordering: .relaxed)
            && writerCoalescing.exchange(false, ordering: .relaxed)
    }

    /// Wakes the writer from `waitForWork`. Taking the lock first makes sure the writer, which raised its flag under
    /// the lock, is waiting by then; the signal comes after the lock is let go, so the writer does not wake only to
    /// wait for this caller's lock (two more system calls for the caller).
    private func wakeWriter() {
        lock.lock()
        lock.unlock()
        lock.signalWork()
    }

    /// The order stamp of a record claimed now and the lane of the CPU the caller runs on (one instruction gives both).
    @inline(__always)
    private func laneAndStamp() -> (UInt64, Int) {
        var cpu: UInt32 = 0
        let stamp = octopus_order_stamp_and_cpu(&cpu)
        // A CPU number past the lanes only on machines with more than 16 CPUs (no division on every line otherwise).
        return (stamp, Int(cpu) < laneCount ? Int(cpu) : Int(cpu) % laneCount)
    }

    /// The bytes a buffer holds, by a lane's state word.
    @inline(__always)
    private func limit(_ word: UInt64) -> Int { word & Self.lanesBit != 0 ? laneCapacity : capacity }

    /// The bytes a line of `count` bytes takes in a buffer.
    @inline(__always)
    static func recordSize(_ count: Int, stamped: Bool) -> Int {
        ((stamped ? stampedHeaderSize : headerSize) + count + recordAlignment - 1) / recordAlignment * recordAlignment
    }

    /// A line that cannot be claimed at once: the buffer is full, the line is larger than a buffer, or the writer is
    /// closed. Returns the state to try again from, or `nil` when the line is done with (dropped, or written).
    private func slowSubmit(_ submission: Submission, durable: Bool, lane: Int) -> UInt64? {
        let lines = submission.lineCount
        lock.lock()
        defer { lock.unlock() }
        while true {
            if stopping {
                counters.drops += lines
                return nil
            }
            let word = octopus_load_u64(laneState(lane))
            let claimed = word & Self.offsetMask
            if word & Self.closedBit != 0 {
                // Another caller's oversized line is being written: wait for its turn to end.
                waitForProgress()
                continue
            }
            let size = Self.recordSize(submission.payload, stamped: word & Self.lanesBit != 0)
            if size > limit(word) {
                // Larger than a buffer: close the buffers to other callers, and have the writer write this line
                // after what was claimed before it.
                oversizedLine = bytes(of: submission)
                oversizedLines = lines
                setClosed(true)
                let generation = word >> Self.offsetBits & Self.generationMask
                passRequested = true
                lock.signalWork()
                while oversizedLine != nil && !stopped { waitForProgress() }
                if durable { waitForGeneration(generation, synced: options.fsync) }
                return nil
            }
            guard claimed + UInt64(size) > UInt64(limit(word)) else { return word }
            // Full: the writer is writing the other buffer, or about to swap this one.
            if options.overflow == .drop {
                counters.drops += lines
                if unreportedDrops == 0 { firstUnreportedDrop = Self.monotonicSeconds() }
                unreportedDrops += lines
                return nil
            }
            waitForProgress()
        }
    }

    /// Lock held: waits for the writer's next pass, waking it first.
    private func waitForProgress() {
        waiters += 1
        lock.signalWork()
        lock.waitForProgress()
        waiters -= 1
    }

    /// Replaces every lane's state word with `change(word)`.
    private func updateLanes(_ change: (UInt64) -> UInt64) {
        for lane in 0..<laneCount {
            let state = laneState(lane)
            var word = octopus_load_u64(state)
            while !octopus_compare_exchange_u64(state, &word, change(word)) {}
        }
    }

    private func setClosed(_ closed: Bool) {
        updateLanes { closed ? $0 | Self.closedBit : $0 & ~Self.closedBit }
    }

    /// Lock held: the most bytes claimed in any lane's filling buffer.
    private var mostClaimed: UInt64 {
        (0..<laneCount).reduce(0) { max($0, octopus_load_u64(laneState($1)) & Self.offsetMask) }
    }

    /// Whether `generation` has been written (generations wrap; the writer is never half the range behind).
    private static func reached(_ done: UInt64, _ generation: UInt64) -> Bool {
        (done &- generation) & generationMask < (generationMask + 1) / 2
    }

    private func waitUntilDurable(_ generation: UInt64) {
        lock.lock()
        defer { lock.unlock() }
        waitForGeneration(generation, synced: options.fsync)
    }

    /// Lock held: returns once the buffer of `generation` is written (and `fdatasync`ed with `synced`).
    private func waitForGeneration(_ generation: UInt64, synced: Bool) {
        if synced { fsyncRequested = true }
        while !stopped && !Self.reached(synced ? syncedGeneration : writtenGeneration, generation) {
            passRequested = true
            waitForProgress()
        }
    }

    /// Lock held: the generation of the buffers filling now.
    private var fillingGeneration: UInt64 {
        octopus_load_u64(laneState(0)) >> Self.offsetBits & Self.generationMask
    }

    /// Returns once every line submitted before the call has been written.
    func flush() {
        lock.lock()
        defer { lock.unlock() }
        waitForGeneration(fillingGeneration, synced: false)
    }

    /// Asks the writer to close and reopen its path before the next batch (for external rotation), and waits.
    func reopen() {
        requestAndWait { $0.reopenRequested = true }
    }

    /// Rolls the file now (whatever its size or period), after writing what is buffered, and waits.
    func roll() {
        requestAndWait { $0.rollRequested = true }
    }

    /// Rolls now if the file (written by any process) has grown past `maxLogSize` (an owner asked by a follower), and
    /// waits.
    func rollIfOversized() {
        requestAndWait { $0.sizeCheckRequested = true }
    }

    /// Rolls now if a period boundary has passed by the clock (the writer's own timer does this too; with an
    /// injected clock, tests call this after moving time), and waits.
    func checkRotation() {
        requestAndWait { _ in }
    }

    /// Sets a request for the writer thread and waits until the writer has passed it: the pass that writes the
    /// buffer filling now takes the request with it, after the lines before.
    private func requestAndWait(_ request: (LogWriter) -> Void) {
        lock.lock()
        defer { lock.unlock() }
        request(self)
        waitForGeneration(fillingGeneration, synced: false)
    }

    /// Writes everything buffered, stops the thread and closes the file. Later submissions are counted as drops.
    func shutdown() {
        lock.lock()
        defer { lock.unlock() }
        stopping = true
        setClosed(true)
        lock.signalWork()
        lock.broadcastProgress()
        while !stopped {
            waiters += 1
            lock.waitForProgress()
            waiters -= 1
        }
    }

    var currentCounters: AppenderCounters {
        lock.lock()
        var result = counters
        lock.unlock()
        rotator?.addCounts(to: &result)
        return result
    }

    // MARK: - The writer thread

    /// Lock held: whether there is nothing to do until a caller or the clock says so.
    private func hasNoWork() -> Bool {
        mostClaimed == 0 && carried.count == 0 && !stopping && !passRequested
            && !reopenRequested && !rollRequested && !sizeCheckRequested && !fsyncRequested
            && !(unreportedDrops > 0 && waiters > 0) && !periodEnded()
    }

    private func run() {
        // The lines of a pass are copied (or rendered) here and written in pieces of about 256 KiB at most, which
        // stay in this thread's cache until the kernel copies them (a line larger than that grows the piece).
        let outputMemory = UnsafeMutablePointer<UInt8>.allocate(capacity: outputCapacity)
        defer { outputMemory.deallocate() }
        let scratch = ThreadScratch.current()
        lock.lock()
        while true {
            while true {
                // The flag is up only while the writer is about to sleep or sleeps: a caller that sees it wakes it.
                guard hasNoWork() else { break }
                writerIdle.store(true, ordering: .sequentiallyConsistent)
                guard hasNoWork() else { break }
                if unreportedDrops > 0 {
                    lock.waitForWork(seconds: 1)
                    if Self.monotonicSeconds() - firstUnreportedDrop >= 1 { break }
                } else if periodEnd != .max {
                    // Wake at the period boundary to roll even when nothing is written.
                    let remaining = Double(periodEnd - clock.now().seconds)
                    lock.waitForWork(seconds: min(60, max(0.01, remaining)))
                } else {
                    lock.waitForWork()
                }
            }
            writerIdle.store(false, ordering: .sequentiallyConsistent)
            // Let a small batch grow for up to `batchDelay`, unless someone is waiting for it. (Callers that waited
            // for room in a full buffer are not: the swap that woke them gave them an empty one, and one that finds
            // it full again wakes the writer. Counting them, a writer descheduled while four threads log on two
            // cores went on for a hundred thousand passes of ~25 lines, until the woken callers had run.)
            let claimedNow = mostClaimed
            if options.batchDelay > 0, claimedNow > 0, claimedNow < UInt64(limit(octopus_load_u64(laneState(0))) / 2),
                !passRequested, !stopping, !reopenRequested, oversizedLine == nil
            {
                writerCoalescing.store(true, ordering: .sequentiallyConsistent)
                lock.waitForWork(seconds: options.batchDelay)
                writerCoalescing.store(false, ordering: .relaxed)
            }
            // With several lanes, the pass writes the records stamped before this moment, in stamp order; those
            // stamped after it (claimed between this moment and their lane's swap) wait for the next pass.
            let passStamp = laneCount > 1 ? octopus_order_stamp_fenced() : 0
            // Callers that keep claiming at the same moment as others turn the lanes on, for good, from the next
            // generation (a process that logs from one thread at a time keeps one lane, and stamps nothing).
            passes += 1
            if laneCount > 1, octopus_load_u64(laneMode) == 0,
                octopus_load_u64(collisions) >= Self.collisionsForLanes || passes == lanesAtPass
            {
                octopus_store_u64(laneMode, 1)
            }
            if octopus_load_u64(collisions) != 0 { octopus_store_u64(collisions, 0) }
            // Swap: later lines go to the other buffers (kept closed while an oversized line waits). Lane 0 first: in
            // the pass that turns the lanes on, a line claimed in any lane's new buffer was claimed after lane 0 was
            // swapped, so no line logged after it is in lane 0's old buffer (which holds that generation's lines,
            // unstamped, written in the order they were claimed).
            let generation = fillingGeneration
            let lanesOn = octopus_load_u64(laneMode) != 0
            let nextWord = ((generation &+ 1) & Self.generationMask) << Self.offsetBits | (lanesOn ? Self.lanesBit : 0)
            var mostClaimedInPass = 0
            var passUsedLanes = false
            for lane in 0..<laneCount {
                let state = laneState(lane)
                var word = octopus_load_u64(state)
                while !octopus_compare_exchange_u64(state, &word, nextWord | word & Self.closedBit) {}
                if lane == 0 {
                    passUsedLanes = word & Self.lanesBit != 0
                    if pauseBetweenSwaps > 0 && (lanesAtPass == nil || passes == lanesAtPass) {
                        usleep(UInt32(pauseBetweenSwaps * 1e6))
                    }
                }
                swappedClaims[lane] = Int(word & Self.offsetMask)
                mostClaimedInPass = max(mostClaimedInPass, swappedClaims[lane])
            }
            let oversized = oversizedLine
            let oversizedCount = oversizedLines
            let wantsFsync = fsyncRequested
            fsyncRequested = false
            passRequested = false
            let reopen = reopenRequested
            reopenRequested = false
            let rollNow = rollRequested
            rollRequested = false
            let checkSize = sizeCheckRequested
            sizeCheckRequested = false
            let isFinal = stopping
            let passFormats = formatTables.last.map { UnsafeBufferPointer(rebasing: $0[..<formats.count]) }
                ?? UnsafeBufferPointer(start: nil, count: 0)
            var noticeCount = 0
            // Report drops once the pressure has eased (this batch is under half the buffer), when someone waits,
            // on shutdown, or at least once a second while drops go on.
            if unreportedDrops > 0
                && (mostClaimedInPass < (passUsedLanes ? laneCapacity : capacity) / 2 || waiters > 0 || isFinal
                    || Self.monotonicSeconds() - firstUnreportedDrop >= 1)
            {
                noticeCount = unreportedDrops
                unreportedDrops = 0
            }
            lock.unlock()

            // A follower told to reopen takes up the current period first: the old period's file is being archived.
            if reopen, coordination.isFollower, periodEnded() { rollForPeriod() }
            if reopen { reopenFile() }
            if periodEnded() { rollForPeriod() }
            var result = WriteResult.written
            var written = 0
            func write(_ bytes: UnsafeBufferPointer<UInt8>) {
                guard !bytes.isEmpty else { return }
                if written == 0 { checkFile() }
                result = merge(result, writeRotating(bytes))
                written += bytes.count
            }
            let fillingIndex = Int(generation & 1)
            var lines = 0
            var out = LogBuffer(over: outputMemory, capacity: outputCapacity, scratch: scratch)
            if !passUsedLanes && carried.count == 0 {
                assert((1..<laneCount).allSatisfy { swappedClaims[$0] == 0 }, "a line claimed outside lane 0 before the lanes")
                // The records claimed in the old buffer, in order, waiting for each to be complete.
                let base = laneBuffers[fillingIndex]
                var read = 0
                while read < swappedClaims[0] {
                    let count = Int(Self.awaitRecord(base + read)) - 1
                    lines &+= emit(base + read, count: count, headerSize: Self.headerSize, passFormats, into: &out, write)
                    read += Self.recordSize(count, stamped: false)
                }
            } else {
                lines = writeInStampOrder(
                    generationIndex: fillingIndex, before: isFinal || oversized != nil ? .max : passStamp, passFormats,
                    into: &out, write)
            }
            write(out.bytes())
            if let oversized {
                oversized.withUnsafeBufferPointer { write($0) }
                lines += oversizedCount
            }
            let writtenLineBytes = written
            if noticeCount > 0 { dropNotice(noticeCount).withUnsafeBufferPointer { write($0) } }
            if wantsFsync, case .written = result, fd >= 0 { fdatasync(fd) }
            if rollNow { roll(bySize: true) }
            if checkSize, let maxSize = rotator?.options.maxLogSize {
                refreshFileSize()
                if fileSize > maxSize { roll(bySize: true) }
            }
            // Empty headers for the buffers' next use.
            for lane in 0..<laneCount {
                laneBuffers[2 &* lane &+ fillingIndex].update(repeating: 0, count: swappedClaims[lane])
            }

            lock.lock()
            switch result {
            case .written:
                if written > 0 {
                    counters.lines += lines
                    counters.bytes += writtenLineBytes
                    counters.batches += 1
                }
            case .failed:
                counters.writeErrors += 1
                counters.lostLines += lines
            }
            // Lines left for the next pass: the buffers' generation is not all written yet.
            let done = carried.count == 0 ? generation : (generation &- 1) & Self.generationMask
            writtenGeneration = done
            if wantsFsync { syncedGeneration = done }
            if oversized != nil {
                oversizedLine = nil
                if !stopping { setClosed(false) }
            }
            if waiters > 0 { lock.broadcastProgress() }
            if isFinal && mostClaimed == 0 && carried.count == 0 && oversizedLine == nil {
                break
            }
        }
        lock.unlock()
        if case .file = target, fd >= 0 { close(fd) }
        fd = -1
        lock.lock()
        stopped = true
        lock.broadcastProgress()
        lock.unlock()
    }

    private enum WriteResult { case written, failed }

    /// Waits until the record at `record` is complete; returns its header (the line's length plus one).
    @inline(__always)
    static func awaitRecord(_ record: UnsafeMutablePointer<UInt8>) -> UInt32 {
        var header = octopus_load_acquire_u32(record)
        var spins = 0
        while header == 0 {
            spins += 1
            if spins > 64 { sched_yield() }
            header = octopus_load_acquire_u32(record)
        }
        return header
    }

    /// With several lanes: writes the records of the lanes' old buffers (generation parity `generationIndex`) and
    /// those left by the last pass, in stamp order, up to the stamp `before`; keeps the later ones for the next pass.
    /// Returns the number of lines written.
    ///
    /// Stamps order the lines as the threads that wrote them saw each other: a caller stamps its line before it
    /// claims the line's place, with a stamp no earlier than anything it saw before (RDTSCP), so a line logged after
    /// another thread's line was seen (that line claimed and complete) has the later stamp. The pass took its own
    /// stamp before it swapped any lane: every line a line stamped before that follows was claimed before the swap,
    /// and is in this pass or an earlier one. A line stamped after may follow one claimed in a lane already swapped,
    /// in the next generation: it waits for the next pass, where the two are sorted together.
    private func writeInStampOrder(
        generationIndex: Int, before passStamp: UInt64, _ formats: UnsafeBufferPointer<Unmanaged<DeferredFormat>>,
        into out: inout LogBuffer, _ write: (UnsafeBufferPointer<UInt8>) -> Void
    ) -> Int {
        stampOrder.removeAll()
        if let base = carried.base, carried.count > 0 { stampOrder.addRun(base, carried.count) }
        for lane in 0..<laneCount where swappedClaims[lane] > 0 {
            stampOrder.addRun(laneBuffers[2 &* lane &+ generationIndex], swappedClaims[lane])
        }
        stampOrder.order()
        var lines = 0
        for entry in stampOrder.records {
            let count = Int(UnsafeRawPointer(entry.record).load(as: UInt32.self)) - 1
            if entry.stamp > passStamp {
                carrying.append(entry.record, Self.recordSize(count, stamped: true))
                continue
            }
            lines &+= emit(entry.record, count: count, headerSize: Self.stampedHeaderSize, formats, into: &out, write)
        }
        carried.removeAll()
        swap(&carried, &carrying)
        return lines
    }

    /// Adds the line of the record at `record` (`count` bytes after its header of `headerSize`) to `out`, rendering
    /// it when the caller left that to the writer (``submitDeferred``); writes out what `out` holds first when the
    /// line may not fit. Returns the record's number of lines.
    @inline(__always)
    private func emit(
        _ record: UnsafePointer<UInt8>, count: Int, headerSize: Int,
        _ formats: UnsafeBufferPointer<Unmanaged<DeferredFormat>>,
        into out: inout LogBuffer, _ write: (UnsafeBufferPointer<UInt8>) -> Void
    ) -> Int {
        if out.count > 0 && out.count + count + Self.renderingRoom > outputCapacity {
            write(out.bytes())
            out.truncate(to: 0)
        }
        let lines = UnsafeRawPointer(record + 4).load(as: UInt32.self)
        let payload = record + headerSize
        guard lines & Self.deferredBit != 0 else {
            out.append(UnsafeBufferPointer(start: payload, count: count))
            return Int(lines)
        }
        let raw = UnsafeRawPointer(payload)
        let timestamp = LogTimestamp(
            seconds: raw.load(as: Int64.self), nanoseconds: raw.load(fromByteOffset: 8, as: Int32.self))
        let message = UnsafeBufferPointer(start: payload + Self.deferredHeaderSize, count: count - Self.deferredHeaderSize)
        let format = Int(raw.load(fromByteOffset: 12, as: UInt32.self)) &- 1
        formats[format]._withUnsafeGuaranteedRef { $0.render(timestamp, message, into: &out) }
        return Int(lines & ~Self.deferredBit)
    }

    /// Writes all of `bytes`, retrying on interruption and short writes. A failure is reported on stderr once per
    /// episode (and its end once writing works again); it never throws or crashes.
    private func writeAll(_ bytes: UnsafeBufferPointer<UInt8>) -> WriteResult {
        if fd < 0 { reopenFile() }
        var error: Int32 = 0
        if fd >= 0, let base = bytes.baseAddress {
            var offset = 0
            while offset < bytes.count {
                let n = write(fd, base + offset, bytes.count - offset)
                if n > 0 {
                    offset += n
                    fileSize += n
                } else if n < 0 && errno == EINTR {
                    continue
                } else if n < 0 && errno == EAGAIN {
                    var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                    _ = poll(&p, 1, 100)
                } else {
                    error = n < 0 ? errno : EIO
                    break
                }
            }
        } else if fd < 0 {
            error = ENOENT
        }
        if error == 0 {
            if failing {
                failing = false
                Self.report(
                    "octopus: writing \(target.name) again after \(failedWrites) failed write(s); "
                        + "\(linesLostInEpisode) line(s) were lost"
                )
            }
            return .written
        }
        failedWrites = failing ? failedWrites + 1 : 1
        if !failing {
            failing = true
            linesLostInEpisode = 0
            Self.report("octopus: cannot write \(target.name): \(String(cString: strerror(error))) (errno \(error)); "
                + "log lines are lost until it can be written again")
        }
        linesLostInEpisode += bytes.reduce(0) { $0 + ($1 == 10 ? 1 : 0) }
        // A file whose directory was removed or whose disk was replaced: try the path again next time.
        if case .file = target, error != ENOSPC { lastFileCheck = 0 }
        return .failed
    }

    /// Writes a batch, rolling by size between lines: a file never grows past `maxLogSize` unless a single line is
    /// larger than that, and no line is ever split across files.
    private func writeRotating(_ batch: UnsafeBufferPointer<UInt8>) -> WriteResult {
        guard let maxSize = rotator?.options.maxLogSize, let base = batch.baseAddress else { return writeAll(batch) }
        if let requestRoll = coordination.requestRoll {
            // Another process rolls: write everything, and ask it to roll once the file is past its size.
            let result = writeAll(batch)
            let now = Self.monotonicSeconds()
            if now - lastRollRequest >= 0.02 {
                refreshFileSize()
                if fileSize > maxSize {
                    lastRollRequest = now
                    requestRoll(target.name)
                }
            }
            return result
        }
        // Other processes write the file too: its size is what the file says, not what this process wrote.
        if coordination.isShared { refreshFileSize() }
        var start = 0
        var result = WriteResult.written
        while start < batch.count {
            let room = maxSize - fileSize
            if batch.count - start <= room { return merge(result, writeAll(UnsafeBufferPointer(rebasing: batch[start...]))) }
            // Take whole lines while they fit; an empty file takes at least one line.
            var end = start
            while end < batch.count {
                guard let newline = memchr(base + end, 10, batch.count - end) else {
                    end = batch.count
                    break
                }
                let lineEnd = base.distance(to: newline.assumingMemoryBound(to: UInt8.self)) + 1
                if lineEnd - start <= room || (end == start && fileSize == 0) {
                    end = lineEnd
                } else {
                    break
                }
            }
            if end > start {
                result = merge(result, writeAll(UnsafeBufferPointer(rebasing: batch[start..<end])))
                start = end
            }
            if start < batch.count { roll(bySize: true) }
        }
        return result
    }

    private func merge(_ a: WriteResult, _ b: WriteResult) -> WriteResult {
        if case .failed = a { return a }
        return b
    }

    /// Whether the clock has passed the end of the hot file's period.
    private func periodEnded() -> Bool {
        periodEnd != .max && clock.now().seconds >= periodEnd
    }

    /// Rolls the hot file to the period it covers and starts the current period. A file with nothing in it is
    /// not rolled (no empty backups), but the period moves on.
    private func rollForPeriod() {
        guard let rotator, let period = rotator.period else { return }
        let now = clock.now().seconds
        if coordination.isFollower {
            // The owner rolls; a follower only moves to the new period's file when the hot file carries the date.
            periodStart = period.start(containing: now)
            periodEnd = period.next(after: periodStart)
            let path = rotator.hotPath(at: now)
            if path != currentPath {
                currentPath = path
                reopenFile()
            }
            return
        }
        // Other processes write the file too: whether it is empty is the file's to say.
        if coordination.isShared { refreshFileSize() }
        if fileSize > 0 || rotator.options.alwaysIncludePattern {
            if fd >= 0 { close(fd) }
            fd = -1
            rotator.roll(hotPath: currentPath, periodStart: periodStart, bySize: false)
        }
        periodStart = period.start(containing: now)
        periodEnd = period.next(after: periodStart)
        currentPath = rotator.hotPath(at: now)
        if fd < 0 { reopenFile() }
    }

    /// Rolls the hot file now (by size, or on request) within the current period.
    private func roll(bySize: Bool) {
        if coordination.isShared { refreshFileSize() }
        guard let rotator, fileSize > 0, !coordination.isFollower else { return }
        if fd >= 0 { close(fd) }
        fd = -1
        rotator.roll(hotPath: currentPath, periodStart: rotator.isDated ? periodStart : nil, bySize: bySize)
        reopenFile()
    }

    /// Reopens the path when it no longer names the open file (removed, or moved away), at most once per
    /// `fileCheckInterval`.
    private func checkFile() {
        guard case .file = target else { return }
        let path = currentPath
        let now = Self.monotonicSeconds()
        guard fd < 0 || now - lastFileCheck >= options.fileCheckInterval else { return }
        lastFileCheck = now
        var st = stat()
        if fd >= 0, stat(path, &st) == 0, let identity = openedIdentity, UInt64(st.st_dev) == identity.dev,
            UInt64(st.st_ino) == identity.ino
        {
            return
        }
        reopenFile()
    }

    /// The open file's size as the file system has it (other processes append too).
    private func refreshFileSize() {
        var st = stat()
        if fd >= 0, fstat(fd, &st) == 0 { fileSize = Int(st.st_size) }
    }

    private func reopenFile() {
        guard case .file = target else { return }
        switch Self.open(path: currentPath, mode: options.mode) {
        case .success(let (descriptor, identity, size)):
            if fd >= 0 { close(fd) }
            fd = descriptor
            openedIdentity = identity
            fileSize = size
        case .failure:
            // Keep what we have; the next write reports the failure and the next check tries again.
            break
        }
    }

    static func createDirectory(for path: String) throws(LogSystemError) {
        let directory = (path as NSString).deletingLastPathComponent
        guard !directory.isEmpty else { return }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw LogSystemError(.cannotOpen, "cannot create directory \(directory) for \(path): \(error.localizedDescription)")
        }
    }

    static func open(path: String, mode: UInt32) -> Result<(Int32, (dev: UInt64, ino: UInt64), Int), LogSystemError> {
        do {
            try createDirectory(for: path)
        } catch {
            return .failure(error)
        }
        let fd = Glibc.open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, mode_t(mode))
        if fd < 0 {
            let code = errno
            return .failure(LogSystemError(.cannotOpen, "cannot open \(path): \(String(cString: strerror(code))) (errno \(code))"))
        }
        var st = stat()
        fstat(fd, &st)
        return .success((fd, (UInt64(st.st_dev), UInt64(st.st_ino)), Int(st.st_size)))
    }

    static func report(_ message: String) {
        let line = Array((message + "\n").utf8)
        line.withUnsafeBytes { _ = write(2, $0.baseAddress, $0.count) }
    }

    static func monotonicSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}

/// A format the writer renders lines with (``LogWriter/submitDeferred(format:timestamp:message:durable:)``).
private final class DeferredFormat {
    let layout: PatternLayout
    let program: RawProgram

    init(layout: PatternLayout, program: RawProgram) {
        self.layout = layout
        self.program = program
    }

    /// Renders the line of an event at `timestamp` with `message` (newline included).
    @inline(__always)
    func render(_ timestamp: LogTimestamp, _ message: UnsafeBufferPointer<UInt8>, into out: inout LogBuffer) {
        let parts = EventParts(levelValue: 0, message: message, timestamp: timestamp, file: "", function: "", line: 0)
        layout.render(parts, program: program, into: &out)
    }
}

/// A record of a lane's buffer (or of the lines a pass left), by its order stamp.
private struct OrderedRecord {
    var stamp: UInt64
    var record: UnsafePointer<UInt8>
}

/// The records of a pass in stamp order. Each lane's records (and those held back) are a run, in stamp order unless
/// a thread was preempted between its stamp and its claim while another on the same CPU claimed: the runs are merged
/// (no allocation once the arrays have grown), or, when a run is out of order, everything is sorted. (A value the
/// writer owns, so that its arrays are not checked for exclusive access on every record, as a class's are.)
private struct StampOrder {
    private(set) var records: [OrderedRecord] = []
    private var merged: [OrderedRecord] = []
    private var runStarts: [Int] = []
    private var runEnds: [Int] = []
    private var runsInOrder = true

    mutating func removeAll() {
        records.removeAll(keepingCapacity: true)
        runStarts.removeAll(keepingCapacity: true)
        runsInOrder = true
    }

    /// Adds the complete-or-soon records of `claimed` bytes at `base` (waiting for each header) as one run.
    mutating func addRun(_ base: UnsafeMutablePointer<UInt8>, _ claimed: Int) {
        runStarts.append(records.count)
        var last: UInt64 = 0
        var read = 0
        while read < claimed {
            let count = Int(LogWriter.awaitRecord(base + read)) - 1
            let stamp = UnsafeRawPointer(base + read + 8).load(as: UInt64.self)
            if stamp < last { runsInOrder = false }
            last = stamp
            records.append(OrderedRecord(stamp: stamp, record: UnsafePointer(base + read)))
            read += LogWriter.recordSize(count, stamped: true)
        }
    }

    /// Puts the records in stamp order.
    mutating func order() {
        guard runsInOrder else {
            records.sort { $0.stamp < $1.stamp }
            return
        }
        guard runStarts.count > 1 else { return }
        merged.removeAll(keepingCapacity: true)
        runEnds.removeAll(keepingCapacity: true)
        runEnds.append(contentsOf: runStarts.dropFirst())
        runEnds.append(records.count)
        // `runStarts[run]` is each run's next record; the run is done when it reaches `runEnds[run]`.
        while true {
            var best = -1
            var bestStamp = UInt64.max
            for run in runStarts.indices where runStarts[run] < runEnds[run] {
                let stamp = records[runStarts[run]].stamp
                if best < 0 || stamp < bestStamp {
                    best = run
                    bestStamp = stamp
                }
            }
            if best < 0 { break }
            merged.append(records[runStarts[best]])
            runStarts[best] += 1
        }
        swap(&records, &merged)
    }
}

/// Growable raw bytes owned by the writer thread (records a pass leaves for the next).
private struct ByteStore {
    private(set) var base: UnsafeMutablePointer<UInt8>?
    private(set) var count = 0
    private var capacity = 0

    mutating func append(_ bytes: UnsafePointer<UInt8>, _ size: Int) {
        if count + size > capacity {
            capacity = max(4096, (count + size) * 2)
            guard let grown = realloc(base, capacity) else { fatalError("octopus: cannot allocate \(capacity) bytes") }
            base = grown.assumingMemoryBound(to: UInt8.self)
        }
        (base! + count).update(from: bytes, count: size)
        count += size
    }

    mutating func removeAll() { count = 0 }

    func deallocate() { free(base) }
}
