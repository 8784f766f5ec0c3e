import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A private PostgreSQL cluster for tests: `initdb` in a temporary folder, `pg_ctl start` on a
/// free loopback port (its unix socket inside that folder), as the `postgres` user when the tests
/// run as root. One cluster per test process (``shared()``), one database per suite
/// (``createDatabase(_:)``); the cluster stops when the process exits.
///
/// Needs PostgreSQL's server programs (`initdb`, `pg_ctl`) on `PATH` or in
/// `/usr/lib/postgresql/*/bin`; without them it fails saying how to install them.
public final class PostgresCluster: Sendable {
    /// The cluster's folder (data, socket, log).
    public let directory: URL
    /// The TCP port on 127.0.0.1.
    public let port: Int
    private let binDirectory: String

    private static let sharedCluster = SharedCluster()

    /// Starts the cluster once: every caller awaits the same start.
    private final class SharedCluster: Sendable {
        private let task = Mutex<Task<PostgresCluster, any Error>?>(nil)

        func get() async throws -> PostgresCluster {
            let task = self.task.withLock { task in
                if let task { return task }
                let started = Task { try await SharedCluster.startOnce() }
                task = started
                return started
            }
            return try await task.value
        }

        private static func startOnce() async throws -> PostgresCluster {
            let started = try await PostgresCluster.start()
            let data = started.directory.appendingPathComponent("data").path
            let control = started.binDirectory + "/pg_ctl"
            let directory = started.directory.path
            PostgresCluster.stopAtExit.withLock { $0 = (control, data, directory) }
            atexit {
                guard let (control, data, directory) = PostgresCluster.stopAtExit.withLock({ $0 }) else { return }
                _ = PostgresCluster.spawnBlocking(
                    PostgresCluster.asPostgres([control, "-D", data, "-m", "immediate", "stop"]), file: "/dev/null")
                try? FileManager.default.removeItem(atPath: directory)
            }
            return started
        }
    }

    private static let stopAtExit = Mutex<(String, String, String)?>(nil)

    private init(directory: URL, port: Int, binDirectory: String) {
        self.directory = directory
        self.port = port
        self.binDirectory = binDirectory
    }

    /// The cluster of this test process, started on first use.
    public static func shared() async throws -> PostgresCluster {
        try await sharedCluster.get()
    }

    /// A new empty database; returns its URL (`postgres://postgres@127.0.0.1:PORT/NAME`).
    public func createDatabase(_ prefix: String = "test") async throws -> String {
        let name = "\(prefix)_\(UUID().uuidString.prefix(8).lowercased())"
        let result = await Self.spawn(
            Self.asPostgres([binDirectory + "/createdb", "-h", "127.0.0.1", "-p", String(port), "-U", "postgres", name])
        )
        guard result.status == 0 else { throw ClusterError("createdb \(name) failed: \(result.output)") }
        return url(database: name)
    }

    /// The URL of `database` in this cluster.
    public func url(database: String) -> String {
        "postgres://postgres@127.0.0.1:\(port)/\(database)"
    }

    /// Runs `sql` with `psql` in `database` and returns its unaligned output.
    public func psql(_ database: String, _ sql: String) async throws -> String {
        let result = await Self.spawn(
            Self.asPostgres([
                binDirectory + "/psql", "-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "-d", database, "-At",
                "-v", "ON_ERROR_STOP=1", "-c", sql,
            ]))
        guard result.status == 0 else { throw ClusterError("psql failed: \(result.output)") }
        return result.output
    }

    static func start() async throws -> PostgresCluster {
        let bin = try findBinDirectory()
        let directory = URL(fileURLWithPath: "/tmp/modelsync-pg-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(
            at: directory.appendingPathComponent("socket"), withIntermediateDirectories: true)
        if getuid() == 0 {
            let chown = await spawn(["chown", "-R", "postgres:postgres", directory.path])
            guard chown.status == 0 else {
                throw ClusterError(
                    "chown of \(directory.path) to postgres failed (is there a 'postgres' user?): \(chown.output)")
            }
        }
        let data = directory.appendingPathComponent("data").path
        let initdb = await spawn(
            asPostgres([
                bin + "/initdb", "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync",
            ]))
        guard initdb.status == 0 else { throw ClusterError("initdb failed: \(initdb.output)") }
        let port = try freePort()
        let options =
            "-p \(port) -k \(directory.appendingPathComponent("socket").path) -c listen_addresses=127.0.0.1 "
            + "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
        // The server inherits pg_ctl's output: a file, not a pipe (a pipe would never reach its end).
        let start = await spawn(
            asPostgres([
                bin + "/pg_ctl", "-D", data, "-o", options, "-l", directory.appendingPathComponent("log").path, "-w",
                "-t", "120", "start",
            ]), output: directory.appendingPathComponent("pg_ctl.out").path)
        guard start.status == 0 else {
            let log = (try? String(contentsOf: directory.appendingPathComponent("log"), encoding: .utf8)) ?? ""
            throw ClusterError("pg_ctl start failed: \(start.output)\n\(log)")
        }
        return PostgresCluster(directory: directory, port: port, binDirectory: bin)
    }

    /// Runs `arguments` (looked up on PATH) with its output in a file (a temporary one unless given),
    /// waiting on a thread of its own; returns the exit status and the output. Not `Process`: a
    /// server that the command leaves running inherits its output, and `Process` would wait for it.
    static func spawn(_ arguments: [String], output: String? = nil) async -> (status: Int32, output: String) {
        let file = output ?? "/tmp/modelsync-spawn-\(UUID().uuidString)"
        return await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                let status = spawnBlocking(arguments, file: file)
                let text = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
                if output == nil { try? FileManager.default.removeItem(atPath: file) }
                continuation.resume(returning: (status, text))
            }
        }
    }

    /// Runs `arguments` with its output appended to `file` and waits for it (blocks the calling thread).
    static func spawnBlocking(_ arguments: [String], file: String) -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, file, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // Nothing else of this process reaches the child, and through it the server daemon: a test's
        // pipe inherited by PostgreSQL would never reach its end (another test's child, waiting for
        // its standard input to close, then never exits).
        closeInheritedDescriptors(&actions)
        runInRootDirectory(&actions)
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        guard posix_spawnp(&pid, arguments[0], &actions, nil, &argv, environ) == 0 else { return 127 }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return 0 }
        }
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }

    /// Closes every descriptor from 3 up in the spawned child: glibc's
    /// `posix_spawn_file_actions_addclosefrom_np` (2.34 and later, which Swift's Glibc module does not
    /// declare), else one close action per descriptor open now.
    private static func closeInheritedDescriptors(_ actions: inout posix_spawn_file_actions_t) {
        typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
        if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") {
            let closeFrom = unsafeBitCast(symbol, to: CloseFrom.self)
            if closeFrom(&actions, 3) == 0 { return }
        }
        let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        for descriptor in open.compactMap(Int32.init) where descriptor > 2 {
            posix_spawn_file_actions_addclose(&actions, descriptor)
        }
    }

    /// Starts the child in `/`: run as `postgres` from a folder that user cannot enter (a clone in a
    /// private temporary folder), PostgreSQL's programs print "could not change directory to …" into
    /// the output, and `psql`'s answer is no longer only the value asked for. glibc's
    /// `posix_spawn_file_actions_addchdir_np` (2.29 and later, not declared by Swift's Glibc module).
    private static func runInRootDirectory(_ actions: inout posix_spawn_file_actions_t) {
        typealias ChangeDirectory =
            @convention(c) (
                UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>
            ) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addchdir_np")
        else { return }
        _ = unsafeBitCast(symbol, to: ChangeDirectory.self)(&actions, "/")
    }

    /// `arguments` run as the `postgres` user when this process is root (PostgreSQL refuses root).
    static func asPostgres(_ arguments: [String]) -> [String] {
        getuid() == 0 ? ["runuser", "-u", "postgres", "--"] + arguments : arguments
    }

    static func findBinDirectory() throws -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let programs = ["initdb", "pg_ctl", "createdb", "psql"]
        for directory in path.split(separator: ":")
        where programs.allSatisfy({ FileManager.default.isExecutableFile(atPath: "\(directory)/\($0)") }) {
            return String(directory)
        }
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [])
            .compactMap(Int.init).sorted(by: >)
        for version in versions
        where programs.allSatisfy({ FileManager.default.isExecutableFile(atPath: "\(root)/\(version)/bin/\($0)") }) {
            return "\(root)/\(version)/bin"
        }
        throw ClusterError(
            "PostgreSQL's server programs (initdb, pg_ctl) were not found on PATH or in /usr/lib/postgresql/*/bin; "
                + "install them with `apt-get install postgresql` (Debian/Ubuntu) and run the tests again")
    }

    static func freePort() throws -> Int {
        let address = try RefusingLoopbackAddress()
        defer { address.close() }
        return address.port
    }
}

/// A free TCP port on 127.0.0.1 (free when asked: bind it soon).
public func freeLoopbackPort() throws -> Int {
    try PostgresCluster.freePort()
}

/// A test cluster could not be set up; the message says what to do.
public struct ClusterError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
