#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization

/// How a file rolls and which rolled files it keeps (log4js's `file` and `dateFile` options, and more).
public struct RotationOptions: Sendable, Hashable {
    /// Roll when the file would grow past this many bytes (`nil`: never by size).
    public var maxLogSize: Int?
    /// Roll at each period of this date pattern (`yyyy-MM-dd` daily, `yyyy-MM-dd-hh` hourly); `nil` never by date.
    public var pattern: String?
    /// With a pattern: the hot file itself carries the current period's name.
    public var alwaysIncludePattern: Bool
    public var keepFileExt: Bool
    public var fileNameSep: String
    /// How many rolled files to keep (log4js's `backups` for `file`, `numBackups` for `dateFile`).
    public var backups: Int
    public var compress: Bool
    /// gzip level, 1 (fastest) to 9 (smallest).
    public var compressionLevel: Int
    /// Rolled files older than this many days are removed.
    public var maxDays: Int?
    /// The oldest rolled files are removed while all rolled files together exceed this many bytes.
    public var maxTotalSize: Int?
    /// The zone of the period boundaries and of the dates in file names.
    public var timeZone: LogTimeZone

    public init(
        maxLogSize: Int? = nil,
        pattern: String? = nil,
        alwaysIncludePattern: Bool = false,
        keepFileExt: Bool = false,
        fileNameSep: String = ".",
        backups: Int = 5,
        compress: Bool = false,
        compressionLevel: Int = 6,
        maxDays: Int? = nil,
        maxTotalSize: Int? = nil,
        timeZone: LogTimeZone = .local
    ) {
        self.maxLogSize = maxLogSize
        self.pattern = pattern
        self.alwaysIncludePattern = alwaysIncludePattern
        self.keepFileExt = keepFileExt
        self.fileNameSep = fileNameSep
        self.backups = backups
        self.compress = compress
        self.compressionLevel = compressionLevel
        self.maxDays = maxDays
        self.maxTotalSize = maxTotalSize
        self.timeZone = timeZone
    }
}

/// The rolling of one file: names, periods, and the work the maintenance thread does after a roll.
final class Rotator: Sendable {
    let options: RotationOptions
    let names: RollingFileNames
    let period: RollPeriod?
    let maintenance: MaintenanceQueue
    let clock: LogClock
    /// The owner's announcement of a roll to the other writers, and its wait, before archiving, until none of them
    /// writes the rolled file (see ``RotationCoordination``); nil when this process is the only writer.
    let announce: (@Sendable (String) -> @Sendable () -> Void)?
    /// The appender's file name, which the barrier is told.
    let file: String
    private struct Counts {
        var rolls = 0
        var archived = 0
        var archiveErrors = 0
    }
    private let counts = Mutex(Counts())
    private let pendingSerial = Mutex(0)

    init(
        path: String, options: RotationOptions, maintenance: MaintenanceQueue, clock: LogClock,
        announce: (@Sendable (String) -> @Sendable () -> Void)? = nil
    ) {
        self.options = options
        self.clock = clock
        self.announce = announce
        self.file = path
        self.names = RollingFileNames(path: path, keepFileExt: options.keepFileExt, separator: options.fileNameSep, compress: options.compress)
        self.period = options.pattern.flatMap { RollPeriod(pattern: $0, timeZone: options.timeZone) }
        self.maintenance = maintenance
    }

    var isDated: Bool { period != nil }

    /// The hot file's path for the period containing `now`.
    func hotPath(at now: Int64) -> String {
        if options.alwaysIncludePattern, let period {
            return names.path(names.hotName(period: period.label(period.start(containing: now))))
        }
        return names.path(names.hotName())
    }

    func record(rolls: Int = 0, archived: Int = 0, archiveErrors: Int = 0) {
        counts.withLock {
            $0.rolls += rolls
            $0.archived += archived
            $0.archiveErrors += archiveErrors
        }
    }

    func addCounts(to counters: inout AppenderCounters) {
        counts.withLock {
            counters.rolls = $0.rolls
            counters.archived = $0.archived
            counters.archiveErrors = $0.archiveErrors
        }
    }

    // MARK: - On the writer's thread

    /// Moves the hot file out of the way (fast: one rename) and queues the rest of the roll. `periodStart` is the
    /// start of the period the file covers (dated files). Called with the file closed.
    func roll(hotPath: String, periodStart: Int64?, bySize: Bool) {
        record(rolls: 1)
        let label = periodStart.flatMap { start in period.map { $0.label(start) } }
        if options.alwaysIncludePattern && !bySize && isDated {
            // The hot file already has its final name: compress it (when asked) and apply retention.
            let othersDone = announce?(file)
            maintenance.enqueue { [self] in
                othersDone?()
                self.compressIfAsked(hotPath)
                self.applyRetention()
            }
            return
        }
        let serial = pendingSerial.withLock { value in
            value += 1
            return value
        }
        let pending = names.path(names.pendingPrefix + "\(getpid())-\(serial)")
        guard rename(hotPath, pending) == 0 else { return }  // nothing to roll (removed meanwhile)
        let indexed = options.maxLogSize != nil
        // The other writers are told now; the rolled file is named and archived once none writes it any more.
        let othersDone = announce?(file)
        maintenance.enqueue { [self] in
            othersDone?()
            self.finishRoll(pending: pending, label: label, indexed: indexed)
        }
    }

    // MARK: - On the maintenance thread

    /// Gives a pending file its final name (shifting the older ones of its period first when indexed), compresses
    /// it when asked, and applies retention.
    func finishRoll(pending: String, label: String?, indexed: Bool) {
        var target: String
        if indexed {
            shiftIndices(of: label)
            target = names.path(names.name(period: label, index: 1, compressed: false))
        } else {
            target = names.path(names.name(period: label, index: nil, compressed: false))
        }
        // Never over an existing file: an occupied name gets the next free index.
        var nextIndex = 1
        while !renameNoReplace(pending, target) {
            guard errno == EEXIST, nextIndex < 10_000 else {
                LogWriter.report("octopus: cannot name rolled file \(pending) as \(target): \(Archiver.errorText())")
                return
            }
            if indexed { shiftIndices(of: label) } else {
                target = names.path(names.name(period: label, index: nextIndex, compressed: false))
            }
            nextIndex += 1
        }
        syncDirectory(of: target)
        compressIfAsked(target)
        applyRetention()
    }

    /// Renames this period's indexed files one index up, highest first (`.1` is always the newest).
    private func shiftIndices(of label: String?) {
        let rolled = listRolled().filter { $0.period == label && $0.index != nil }
        for file in rolled.sorted(by: { ($0.index ?? 0) > ($1.index ?? 0) }) {
            guard let index = file.index else { continue }
            let to = names.path(names.name(period: label, index: index + 1, compressed: file.compressed))
            _ = renameNoReplace(names.path(file.name), to)
        }
    }

    private func compressIfAsked(_ path: String) {
        guard options.compress else { return }
        if access(path + ".gz", F_OK) == 0 {
            // A crash came between the archive's rename and the source's removal. Archives are renamed into place
            // only once complete and fsynced, so the archive is whole: the source can go.
            unlink(path)
            return
        }
        do {
            try Archiver.compress(path, to: path + ".gz", level: Int32(options.compressionLevel))
            record(archived: 1)
        } catch {
            record(archiveErrors: 1)
            LogWriter.report("octopus: cannot compress \(path): \(error)")
        }
    }

    /// This appender's rolled files in its directory (never another appender's, never the hot file).
    func listRolled() -> [RollingFileNames.Rolled] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: names.directory)) ?? []
        let hot = Set([names.hotName(), (hotPathForRetention as NSString).lastPathComponent])
        return entries.compactMap { name in
            hot.contains(name) ? nil : names.parse(name, dated: isDated, periodLength: period?.labelLength)
        }
    }

    /// With `alwaysIncludePattern` the current period's file is hot, not a backup.
    private var hotPathForRetention: String { hotPath(at: clock.now().seconds) }

    /// Keeps the newest `backups` rolled files, none older than `maxDays`, and no more than `maxTotalSize` in all.
    func applyRetention() {
        var files: [(file: RollingFileNames.Rolled, size: Int, modified: Double)] = listRolled().map { file in
            var st = stat()
            stat(names.path(file.name), &st)
            return (file, Int(st.st_size), Double(st.st_mtim.tv_sec))
        }
        // Newest first: later period first; within a period (or undated) the lower index is newer.
        files.sort { a, b in
            if a.file.period != b.file.period { return (a.file.period ?? "") > (b.file.period ?? "") }
            return (a.file.index ?? 0) < (b.file.index ?? 0)
        }
        let now = Double(clock.now().seconds)
        var total = 0
        for (position, entry) in files.enumerated() {
            total += entry.size
            let tooMany = position >= options.backups
            let tooOld = options.maxDays.map { now - entry.modified > Double($0) * 86_400 } ?? false
            let tooBig = options.maxTotalSize.map { total > $0 } ?? false
            if tooMany || tooOld || tooBig { unlink(names.path(entry.file.name)) }
        }
    }

    /// On start: removes stray temporary archives, compresses rolled files left plain, finishes rolls a crash
    /// interrupted, and rolls a hot file left from an earlier period to that period's name — in that order, all on
    /// the maintenance thread but the last step's rename.
    func recover(now: Int64) {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: names.directory)) ?? []
        let prefix = names.stem
        for name in entries where name.hasPrefix(prefix) && name.contains(Archiver.temporaryMarker) {
            unlink(names.path(name))
        }
        // Rolled files left plain first, while every name is still where the crash left it (finishing a pending
        // roll below shifts indices).
        if options.compress {
            for file in listRolled() where !file.compressed {
                let path = names.path(file.name)
                maintenance.enqueue { [self] in self.compressIfAsked(path) }
            }
        }
        let pendings = entries.filter { $0.hasPrefix(names.pendingPrefix) }.map { names.path($0) }
            .sorted { modificationTime($0) < modificationTime($1) }
        for pending in pendings {
            let label = period.map { $0.label($0.start(containing: Int64(modificationTime(pending)))) }
            let indexed = options.maxLogSize != nil
            maintenance.enqueue { [self] in self.finishRoll(pending: pending, label: label, indexed: indexed) }
        }
        if let period, !options.alwaysIncludePattern {
            let hot = names.path(names.hotName())
            var st = stat()
            if stat(hot, &st) == 0, st.st_size > 0 {
                let fileStart = period.start(containing: Int64(st.st_mtim.tv_sec))
                if fileStart < period.start(containing: now) {
                    roll(hotPath: hot, periodStart: fileStart, bySize: false)
                }
            }
        }
        maintenance.enqueue { [self] in self.applyRetention() }
    }

    private func modificationTime(_ path: String) -> Double {
        var st = stat()
        return stat(path, &st) == 0 ? Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9 : 0
    }
}
