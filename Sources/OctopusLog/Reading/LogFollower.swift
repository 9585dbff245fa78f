#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Follows a log across its rolls, as `tail -F` does, without skipping a file however fast the log rolls.
///
/// - The directory is watched with inotify (polled every interval where inotify is unavailable): each creation
///   of the hot name opens the new file at once, and the descriptor of every file that was hot is kept until the
///   file is read to its end, so a renamed, compressed-away or removed file stays readable.
/// - A file is left for the next one only once it is *final*: no longer hot and no longer pending (a rolled
///   file waits under a pending name until every writer has reopened; see ``RotationCoordination``), so lines
///   other processes write late into it are still read, in order.
/// - A file that was hot so briefly that it rolled before it could be opened is noticed (the watch counts the hot
///   name's creations) and read from its rolled file or its archive, in its place in the order. One removed by
///   retention before it could be read is reported, never passed over in silence.
public final class LogFollower {
    public let path: String
    let rotation: RotationOptions?
    let names: RollingFileNames
    /// Nil until the directory exists, and where inotify is unavailable (then the directory is polled).
    private var watch: DirectoryWatch?
    private var watchUnavailable = false
    private let canWatch: Bool
    /// The files opened as hot, oldest first; the first is the one being printed.
    private var held: [HeldFile] = []
    /// The last file printed to its end: where missed files are looked for. Its descriptor stays open, so that
    /// its inode is not reused for a newer file while it is compared by inode.
    private var anchor: FileIdentity?
    private var anchorDescriptor: Int32 = -1
    /// The log had no file when following began: every file that appears is new, rolled ones included.
    private var fromNothing = false
    /// Creations of the hot name the watch saw, and files opened as hot since it watches: the difference is the
    /// files that were hot too briefly to be opened. Unknown (-1) without a watch, or after its queue overflowed.
    private var created = 0
    private var opened = 0
    private var unopened = 0
    private var waitingSince: ContinuousClock.Instant?
    /// Calls of ``readAvailable()``, and their count when the wait began.
    private var looks = 0
    private var waitingSinceLook = 0
    /// Called with a description of what could not be read (a file removed before it could be read).
    public var report: (String) -> Void = { _ in }

    /// Starts following `path` from its current end (`fromStart`: from its first line).
    public init(path: String, rotation: RotationOptions?, fromStart: Bool = false) {
        self.path = path
        self.rotation = rotation
        self.names = RollingFileNames(
            path: path, keepFileExt: rotation?.keepFileExt ?? false, separator: rotation?.fileNameSep ?? ".",
            compress: rotation?.compress ?? false)
        // Counting creations needs one hot name (not a new one per period).
        canWatch = !(rotation?.alwaysIncludePattern ?? false)
        startWatching(fromStart: fromStart)
        fromNothing = held.isEmpty
    }

    /// The file being written now.
    public var hotPath: String {
        LogFileSet.hotPath(of: path, rotation: rotation)
    }

    /// The log had no file when following began: every file of it is new (none is to be listed before).
    public var startedEmpty: Bool { fromNothing }

    /// Whether `file` (a plain file) is one this follower holds and will print.
    public func holds(_ file: LogFileSet.File) -> Bool {
        guard !file.compressed, let opened = RolledFile(file) else { return false }
        return held.contains { $0.matches(opened) }
    }

    /// Waits up to `milliseconds` for the directory to change, then returns the complete lines written since the
    /// last call, in order. The last line of a file that rolled without its newline is returned with it.
    public func next(waiting milliseconds: Int32) -> [String] {
        if let watch { watch.wait(milliseconds) } else { usleep(UInt32(milliseconds) * 1000) }
        return readAvailable()
    }

    /// The lines written since the last call, without waiting.
    public func readAvailable() -> [String] {
        // The directory may appear after following began; where inotify is unavailable, the directory is polled.
        if watch == nil, !watchUnavailable { startWatching(fromStart: true) }
        looks += 1
        discover()
        var lines: [String] = []
        while true {
            if !recoverMissed(into: &lines) { break }
            guard let current = held.first else { break }
            lines += current.readAvailable()
            guard held.count > 1 || current.replaced(at: hotPath) else { break }
            if rotation?.alwaysIncludePattern == true, !current.quietLongEnough() { break }
            guard current.isFinal(pending: pendingFiles()) else { break }
            lines += current.drain()
            setAnchor(current.identity, descriptor: current.takeDescriptor())
            held.removeFirst()
        }
        return lines
    }

    private func setAnchor(_ identity: FileIdentity, descriptor: Int32) {
        if anchorDescriptor >= 0 { close(anchorDescriptor) }
        anchor = identity
        anchorDescriptor = descriptor
    }

    /// Watches the directory (once it exists) and opens the hot file if none is held yet: creations from now on
    /// are counted.
    private func startWatching(fromStart: Bool) {
        watch = DirectoryWatch(directory: names.directory)
        var isDirectory: ObjCBool = false
        watchUnavailable = watch == nil && FileManager.default.fileExists(atPath: names.directory, isDirectory: &isDirectory)
        unopened = watch != nil && canWatch ? 0 : -1
        created = 0
        opened = 0
        if held.isEmpty, let file = HeldFile(path: hotPath) {
            if !fromStart { file.skipToEnd() }
            held.append(file)
        }
        _ = watch?.drain()  // the creation of the file just opened is no miss
    }

    /// Opens the hot file when it is not one already held, until the watch reports no further creation of it:
    /// then every creation counted is of a file held, or of one that rolled before it could be opened.
    private func discover() {
        let hotName = (hotPath as NSString).lastPathComponent
        for _ in 0..<100 {
            let events = watch?.drain() ?? .init(creations: [:], overflow: false)
            if events.overflow { unopened = -1 }
            let creations = events.creations[hotName] ?? 0
            created += creations
            var openedOne = false
            if let file = HeldFile(path: hotPath) {
                if held.contains(where: { $0.identity == file.identity }) {
                    file.close()
                } else {
                    held.append(file)
                    opened += 1
                    openedOne = true  // its creation may not be drained yet: drain again
                }
            }
            if creations == 0 && !openedOne { break }
        }
        if unopened >= 0 { unopened = max(0, created - opened) }
    }

    /// Reads the files that were hot between the anchor and the first held file without being opened, from their
    /// rolled names or archives. False while one of them is still pending (wait for it to be named).
    private func recoverMissed(into lines: inout [String]) -> Bool {
        if fromNothing {
            guard !held.isEmpty else { return true }  // nothing yet: the first file opened tells where rolled ones end
        } else {
            // Without an anchor the first held file is the one following began with: every file missed came
            // after it, and is looked for once it is printed (it is the anchor then).
            guard unopened != 0, anchor != nil else {
                waitingSince = nil  // a wait that began earlier has ended
                return true
            }
        }
        // Whether the first held file has rolled, looked at before the pending files: if so it is among them, or
        // named already.
        let firstRolled = held.first?.replaced(at: hotPath) ?? false
        // Pending files first, then the names: a file pending at the first look is in the listing, or still
        // pending (waited for below); never named unseen in between.
        let pending = pendingFiles()
        let pendingUnheld = pending.contains { inode in !held.contains { $0.identity.ino == inode } }
        // A pending file comes before the held ones: wait until it is named (before reading any: a window read
        // now would be read again).
        if fromNothing, pendingUnheld, !waitedTooLong() { return false }
        let (rolled, stable) = openRolledFiles()
        // Names shift at every roll (`.1` is always the newest): a listing that never held still while it was taken
        // may lack a file or show one twice. Nothing is read from it; it is taken again at the next look, for a
        // few seconds before it is used as it is.
        if !stable, !waitedTooLong() { return false }
        var end = rolled.firstIndex { file in held.contains { $0.matches(file) } } ?? rolled.count
        if end == rolled.count, let first = held.first, first.replaced(at: hotPath),
            !pending.contains(first.identity.ino)
        {
            // The first held file has a rolled name, yet the listing has neither it nor its archive.
            if first.isLinked {
                // Still named (a listing taken while names shifted): look again rather than take files after it.
                if !waitedTooLong() { return false }
            } else {
                end = 0  // removed by retention: so was every older file, and those listed are all newer
            }
        }
        var window: ArraySlice<RolledFile> = []
        if fromNothing {
            window = rolled[..<end]  // all of them are new
        } else if let anchor, let found = rolled[..<end].lastIndex(where: { anchor.matches($0) }) {
            window = rolled[(found + 1)..<end]
            // Retention removes the oldest files first, so with the anchor still there none after it is gone. With
            // one file held every file missed lies here: fewer means the listing lacks one (read now, the files
            // after it would be printed and it never). Look again.
            if held.count <= 1, unopened > window.count, !waitedTooLong() { return false }
        } else if unopened > 0 {
            window = rolled[max(0, end - unopened)..<end]  // the anchor is gone: the newest ones before the held
        }
        for file in window {
            guard let bytes = file.content else { continue }
            lines += LogFileSet.lines(of: bytes)
            setAnchor(FileIdentity(of: file), descriptor: dup(file.fd))
        }
        fromNothing = false
        if unopened > 0 {
            opened += min(window.count, unopened)
            unopened = created - opened
        }
        guard unopened > 0 else {
            waitingSince = nil
            return true
        }
        // Still missing: wait while one of them may be pending (not yet named) before the first held file, up to a
        // few seconds. Rolled files are named in the order they rolled, so once the first held file has its name (or
        // is gone) every pending file came after it: it is printed now, and the files missed after it are looked
        // for when it is done. (Waiting then stalled a follower behind a writer that kept rolling: a pending file
        // is there most of the time, and after each wait the files still missed were reported lost.)
        let firstHeldIsNamed = firstRolled && !pending.contains(held[0].identity.ino)
        let pendingBeforeFirst = pendingUnheld && !firstHeldIsNamed
        if pendingBeforeFirst, !waitedTooLong() { return false }
        if held.count <= 1 || pendingBeforeFirst {
            report("octopus tail: \(unopened) rolled file(s) of \(path) could not be read (removed before tail reached them)")
            opened = created
            unopened = 0
        }
        waitingSince = nil
        return true
    }

    /// The rolled files, oldest first, each opened, from a listing whose names still named the same files once
    /// all were open: names shift while a roll is finished, and what a name holds can change after the listing.
    private func openRolledFiles() -> (files: [RolledFile], stable: Bool) {
        var files: [RolledFile] = []
        var stable = false
        for _ in 0..<50 where !stable {
            let set = LogFileSet(path: path, rotation: rotation)
            files = set.files.filter { $0.path != set.hotPath }.compactMap(RolledFile.init)
            let same = files.allSatisfy { file in
                var st = stat()
                return stat(file.file.path, &st) == 0 && UInt64(st.st_ino) == file.ino && UInt64(st.st_dev) == file.dev
            }
            // A directory read while names shift can miss a file: a second listing with the same names says none
            // moved meanwhile.
            stable = same && files.count == set.files.count - (set.files.last?.path == set.hotPath ? 1 : 0)
                && LogFileSet(path: path, rotation: rotation).files == set.files
        }
        // A plain rolled file and its archive side by side (the archive done, the source not yet removed): one.
        let plain = Set(files.filter { !$0.file.compressed }.map(\.file.path))
        files.removeAll { $0.file.compressed && plain.contains(String($0.file.path.dropLast(3))) }
        return (files, stable)
    }

    /// Starts the wait for a pending file to be named, or says it lasted too long: 5 s, over which this follower looked
    /// at least 25 times (`tail -f` looks every 200 ms at most). A follower the machine starves of CPU for seconds
    /// has not looked for most of them, and the writers may well have named the file meanwhile.
    private func waitedTooLong() -> Bool {
        let now = ContinuousClock.now
        guard let since = waitingSince else {
            waitingSince = now
            waitingSinceLook = looks
            return false
        }
        return now - since >= .seconds(5) && looks - waitingSinceLook >= 25
    }

    /// The inodes of this log's pending files (rolled, not yet named).
    private func pendingFiles() -> [UInt64] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: names.directory)) ?? []
        return entries.filter { $0.hasPrefix(names.pendingPrefix) }.compactMap { name in
            var st = stat()
            return stat(names.path(name), &st) == 0 ? UInt64(st.st_ino) : nil
        }
    }

    deinit {
        for file in held { file.close() }
        if anchorDescriptor >= 0 { close(anchorDescriptor) }
    }
}

/// Which file a descriptor holds, and enough of its content to recognise its archive.
struct FileIdentity: Equatable {
    var dev: UInt64
    var ino: UInt64
    var size: Int64 = 0
    var head: [UInt8] = []
    var tail: [UInt8] = []

    static func == (a: FileIdentity, b: FileIdentity) -> Bool { a.dev == b.dev && a.ino == b.ino }

    init(dev: UInt64, ino: UInt64) {
        self.dev = dev
        self.ino = ino
    }

    /// The identity of a rolled file.
    init(of file: RolledFile) {
        dev = file.file.compressed ? 0 : file.dev
        ino = file.file.compressed ? 0 : file.ino
        let bytes = file.content ?? []
        size = Int64(bytes.count)
        head = Array(bytes.prefix(4096))
        tail = Array(bytes.suffix(4096))
    }

    /// Whether `file` is this file: the same inode for a plain file, the same size and ends for an archive. An
    /// archive is decompressed only as far as its first bytes until those match (a listing holds many archives of
    /// the same size, and this is asked of each until one matches).
    func matches(_ file: RolledFile) -> Bool {
        if !file.file.compressed { return file.dev == dev && file.ino == ino }
        guard size > 0, file.uncompressedSizeModulo == UInt32(truncatingIfNeeded: size),
            let start = file.prefix(head.count), start.elementsEqual(head),
            let bytes = file.content, bytes.count == size
        else { return false }
        return bytes.suffix(tail.count).elementsEqual(tail)
    }
}

/// A rolled file opened when the directory was listed: what it reads does not change when it is renamed.
final class RolledFile {
    let file: LogFileSet.File
    let fd: Int32
    let dev: UInt64
    let ino: UInt64
    private var loaded: [UInt8]??
    private var loadedPrefix: [UInt8]?

    init?(_ file: LogFileSet.File) {
        self.file = file
        fd = open(file.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        var st = stat()
        fstat(fd, &st)
        dev = UInt64(st.st_dev)
        ino = UInt64(st.st_ino)
    }

    /// Its lines' bytes, decompressed when it is an archive (nil when it cannot be read).
    var content: [UInt8]? {
        if let loaded { return loaded }
        let bytes = file.compressed ? try? Archiver.decompress(descriptor: fd) : Archiver.readAll(fd)
        loaded = .some(bytes)
        return bytes
    }

    /// Its first `count` bytes (decompressed when it is an archive), read once.
    func prefix(_ count: Int) -> [UInt8]? {
        if let loaded { return loaded.map { Array($0.prefix(count)) } }
        if let loadedPrefix, loadedPrefix.count >= count { return Array(loadedPrefix.prefix(count)) }
        let bytes = file.compressed ? Archiver.decompressPrefix(descriptor: fd, count: count) : content.map { Array($0.prefix(count)) }
        loadedPrefix = bytes
        return bytes
    }

    /// An archive's uncompressed size modulo 2^32 (its trailer), without decompressing it.
    var uncompressedSizeModulo: UInt32? { Archiver.uncompressedSizeModulo(descriptor: fd) }

    deinit { close(fd) }
}

/// A descriptor on a file that was hot, read from where it was last read.
final class HeldFile {
    private(set) var identity: FileIdentity
    private var fd: Int32
    private var offset: Int64 = 0
    private var partial: [UInt8] = []
    private var supersededAt: ContinuousClock.Instant?
    /// Reused for every read: a follower woken by each write must not allocate per wake.
    private var chunk = [UInt8](repeating: 0, count: 256 * 1024)

    init?(path: String) {
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        var st = stat()
        fstat(fd, &st)
        identity = FileIdentity(dev: UInt64(st.st_dev), ino: UInt64(st.st_ino))
    }

    func skipToEnd() {
        var st = stat()
        fstat(fd, &st)
        offset = Int64(st.st_size)
    }

    /// Whether `hot` names another file (or none) now.
    func replaced(at hot: String) -> Bool {
        var st = stat()
        guard stat(hot, &st) == 0 else { return true }
        return UInt64(st.st_dev) != identity.dev || UInt64(st.st_ino) != identity.ino
    }

    /// A file that keeps its name when the next period's file is hot (`alwaysIncludePattern`) is never renamed to
    /// say that its writers are done: a writer switches at its first write of the new period, so lines of the old
    /// period can still come for a moment. Such a file is left a second after it stopped being hot.
    func quietLongEnough() -> Bool {
        let now = ContinuousClock.now
        if supersededAt == nil { supersededAt = now }
        return now - supersededAt! >= .seconds(1)
    }

    /// No writer will add to it: removed, or neither hot nor pending (named as a rolled file, or another period's).
    /// `pending`: the inodes of the log's pending files.
    func isFinal(pending: @autoclosure () -> [UInt64]) -> Bool {
        var st = stat()
        fstat(fd, &st)
        return st.st_nlink == 0 || !pending().contains(identity.ino)
    }

    /// Whether the file still has a name.
    var isLinked: Bool {
        var st = stat()
        return fd >= 0 && fstat(fd, &st) == 0 && st.st_nlink > 0
    }

    /// The complete lines written since the last read.
    func readAvailable() -> [String] {
        guard fd >= 0 else { return [] }
        var st = stat()
        fstat(fd, &st)
        if Int64(st.st_size) < offset {  // truncated: start again from the top
            offset = 0
            partial.removeAll()
        }
        var lines: [String] = []
        while true {
            let n = chunk.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(offset)) }
            if n <= 0 { break }
            offset += Int64(n)
            var start = 0
            if let first = chunk[0..<n].firstIndex(of: UInt8(ascii: "\n")) {
                partial += chunk[0..<first]
                lines.append(String(decoding: partial, as: UTF8.self))
                partial.removeAll(keepingCapacity: true)
                start = first + 1
                while let newline = chunk[start..<n].firstIndex(of: UInt8(ascii: "\n")) {
                    lines.append(String(decoding: chunk[start..<newline], as: UTF8.self))
                    start = newline + 1
                }
            } else {
                start = 0
            }
            partial += chunk[start..<n]
        }
        identity.size = offset
        return lines
    }

    /// What is left, including a last line without its newline; closes the file.
    func drain() -> [String] {
        var lines = readAvailable()
        if !partial.isEmpty { lines.append(String(decoding: partial, as: UTF8.self)) }
        partial.removeAll()
        identity = fullIdentity(size: offset)
        return lines
    }

    /// The identity with the file's first and last bytes (up to `size`), to recognise its archive.
    private func fullIdentity(size: Int64) -> FileIdentity {
        var full = identity
        full.size = size
        full.head = bytes(at: 0, end: size)
        full.tail = bytes(at: max(0, size - 4096), end: size)
        return full
    }

    /// Whether `file` is this file, or its archive.
    func matches(_ file: RolledFile) -> Bool {
        guard file.file.compressed, fd >= 0 else { return identity.matches(file) }
        var st = stat()
        fstat(fd, &st)
        return fullIdentity(size: Int64(st.st_size)).matches(file)
    }

    /// The descriptor, now the caller's to close.
    func takeDescriptor() -> Int32 {
        defer { fd = -1 }
        return fd
    }

    private func bytes(at position: Int64, end: Int64) -> [UInt8] {
        let count = Int(min(end - position, 4096))
        guard count > 0 else { return [] }
        var buffer = [UInt8](repeating: 0, count: count)
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(position)) }
        return Array(buffer.prefix(max(0, n)))
    }

    func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }
}

/// An inotify watch on a directory: what was created or moved in, and a wait for the next change.
final class DirectoryWatch {
    private let fd: Int32

    struct Events {
        /// How many times each name was created or moved into the directory.
        var creations: [String: Int]
        /// The kernel's queue overflowed: events were lost.
        var overflow: Bool
    }

    init?(directory: String) {
        fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard fd >= 0 else { return nil }
        let mask = UInt32(IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_MODIFY | IN_DELETE | IN_CLOSE_WRITE | IN_ATTRIB)
        guard inotify_add_watch(fd, directory, mask) >= 0 else {
            Glibc.close(fd)
            return nil
        }
    }

    /// Waits until something changes in the directory, at most `milliseconds`.
    func wait(_ milliseconds: Int32) {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        _ = poll(&pfd, 1, milliseconds)
    }

    /// The events queued since the last drain.
    func drain() -> Events {
        var events = Events(creations: [:], overflow: false)
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            var at = 0
            while at + 16 <= n {
                let mask = buffer.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at + 4, as: UInt32.self) }
                let length = Int(buffer.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at + 12, as: UInt32.self) })
                if mask & UInt32(IN_Q_OVERFLOW) != 0 { events.overflow = true }
                if mask & UInt32(IN_CREATE | IN_MOVED_TO) != 0, length > 0 {
                    let raw = buffer[(at + 16)..<min(n, at + 16 + length)]
                    let name = String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
                    events.creations[name, default: 0] += 1
                }
                at += 16 + length
            }
        }
        return events
    }

    deinit { Glibc.close(fd) }
}
