import CShims
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// What `/proc` says of a process.
package enum ProcessTable {
    /// Whether a process with this pid exists (a zombie counts).
    package static func exists(_ pid: Int32) -> Bool {
        pid > 0 && (kill(pid, 0) == 0 || errno == EPERM)
    }

    /// When the process started, in clock ticks since boot (field 22 of `/proc/PID/stat`): with the pid, it names one
    /// process for good, since a reused pid has a later start time.
    package static func startTime(_ pid: Int32) -> UInt64? {
        guard let stat = read("/proc/\(pid)/stat") else { return nil }
        // The command name (field 2) is in parentheses and may hold spaces or parentheses: fields start after the last ')'.
        guard let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // fields[0] is field 3 (state); field 22 is fields[19].
        guard fields.count > 19 else { return nil }
        return UInt64(fields[19])
    }

    /// Whether the process that had `startTime` still runs under `pid`: it exists, is not a zombie (ended, not yet
    /// reaped by its parent), and its pid has not been reused.
    package static func isRunning(_ pid: Int32, startTime: UInt64) -> Bool {
        guard let stat = read("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { return false }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 19, fields[0] != "Z", fields[0] != "X" else { return false }
        return UInt64(fields[19]) == startTime
    }

    /// The parent's pid (field 4 of `/proc/PID/stat`).
    package static func parent(_ pid: Int32) -> Int32? {
        guard let stat = read("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 1 else { return nil }
        return Int32(fields[1])
    }

    /// Resident memory in bytes (`VmRSS` of `/proc/PID/status`).
    package static func residentBytes(_ pid: Int32) -> Int? {
        guard let status = read("/proc/\(pid)/status") else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            let digits = line.dropFirst(6).filter(\.isNumber)
            return Int(digits).map { $0 * 1024 }
        }
        return nil
    }

    /// The pids of every process whose parent is `pid`.
    package static func children(of pid: Int32) -> [Int32] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return entries.compactMap { Int32($0) }.filter { parent($0) == pid }.sorted()
    }

    private static func read(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            bytes.append(contentsOf: buffer[0..<n])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Process groups this process started (command tasks), kept where a signal handler can reach them: when the
/// process's parent dies, every one of them is killed (see ``ParentDeath``).
package enum ProcessGroups {
    package static func add(_ pgid: Int32) { _ = octopus_groups_add(pgid) }
    package static func remove(_ pgid: Int32) { octopus_groups_remove(pgid) }
    package static func killAll(_ signal: Int32 = SIGKILL) { octopus_groups_kill(signal) }
}

/// A cluster child's tie to its parent: the signal the kernel sends when the parent ends.
package enum ParentDeath {
    package static var signal: Int32 { octopus_parent_death_signal() }

    /// Asks for ``signal`` when the parent ends, and handles it: registered process groups get SIGKILL, and the
    /// process has 2 s to notice its channel closing and exit by itself (then SIGALRM ends it). Returns false when the
    /// parent is already gone (it is no longer `expectedParent`).
    package static func arm(expectedParent: Int32) -> Bool {
        _ = octopus_install_parent_death_handler()
        _ = octopus_set_parent_death_signal(signal)
        return getppid() == expectedParent
    }
}

package enum Signals {
    package static func ignore(_ signal: Int32) { _ = octopus_ignore_signal(signal) }
    package static func reset(_ signal: Int32) { _ = octopus_default_signal(signal) }
}
