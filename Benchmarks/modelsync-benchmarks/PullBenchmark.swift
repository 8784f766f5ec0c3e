import ChatModels
import Foundation
import GRDB
import ModelSync
import ModelSyncReferenceServer

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// A loopback reference server holding one user, `threads` threads and `messages` messages.
struct PullServer {
    var server: ReferenceServer
    var baseURL: URL
    var rows: Int

    static func make(threads: Int, messages: Int) async throws -> PullServer {
        let server = ReferenceServer(models: GeneratedModels.all)
        let baseURL = try await server.start()
        let user = try await server.insert(
            ["id": .string("usr_1"), "name": .string("Ada"), "email": .string("ada@example.com")], into: User.self)
        var threadIDs: [JSONValue] = []
        for index in 0..<threads {
            let thread = try await server.insert(
                [
                    "title": .string("Thread \(index)"), "created_at": .string("2026-01-01T00:00:00Z"),
                    "tags": .array([.string("bench")]), "owner_id": user["id"]!,
                ], into: ChatThread.self)
            threadIDs.append(thread["id"]!)
        }
        for index in 0..<messages {
            try await server.insert(
                [
                    "role": .string("user"), "body": .string("Message number \(index) of the benchmark"),
                    "thread_id": threadIDs[index % threads],
                ], into: Message.self)
        }
        return PullServer(server: server, baseURL: baseURL, rows: 1 + threads + messages)
    }
}

/// Where the benchmarks' database files go; removed at the end of the run.
let benchmarkFolder = FileManager.default.temporaryDirectory.appendingPathComponent(
    "modelsync-benchmarks-\(ProcessInfo.processInfo.processIdentifier)")

/// A fresh file-backed store (WAL, what apps use) in a new folder of ``benchmarkFolder``.
func makeFileStore(_ label: String) throws -> (SyncStore, URL) {
    let directory = benchmarkFolder.appendingPathComponent("\(label)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    return (
        try SyncStore(.file(directory.appendingPathComponent("app.sqlite")), models: GeneratedModels.all), directory
    )
}

/// Resident memory now and at its peak since the last reset, in MB (Linux `/proc/self/status`).
func residentMemory() -> (current: Double, peak: Double) {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return (0, 0) }
    func value(_ key: String) -> Double {
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(key) }) else { return 0 }
        return (Double(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) / 1024
    }
    return (value("VmRSS:"), value("VmHWM:"))
}

/// CPU seconds (user and system) this process has used, server threads included.
func processorSeconds() -> Double {
    var usage = rusage()
    #if canImport(Glibc)
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    #else
        getrusage(RUSAGE_SELF, &usage)
    #endif
    func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// Resets the peak resident memory to the current one (Linux: `5` into `/proc/self/clear_refs`).
func resetPeakMemory() {
    try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
}

/// Pulls everything the server holds into a fresh file-backed store with the engine; returns the
/// report.
func enginePull(_ server: PullServer) async throws -> PullReport {
    let (store, directory) = try makeFileStore("ours")
    defer { try? FileManager.default.removeItem(at: directory) }
    let remote = RESTRemote(
        configuration: .init(baseURL: server.baseURL, pageSize: pullPageSize), models: GeneratedModels.all,
        session: makeSession())
    let report = try await SyncEngine(store: store, remote: remote).sync().pull
    precondition(report.inserted == server.rows, "pulled \(report.inserted) of \(server.rows)")
    return report
}

/// Items per listing page, for ours and the baseline.
let pullPageSize = 1_000

/// Starts fetching one listing page of `path` (the collection's path) with `session`, as the raw
/// baseline and the ceilings do.
func listingPage(of path: String, after cursor: String?, from server: PullServer, with session: URLSession)
    -> Task<Data, any Error>
{
    let url = URL(
        string: server.baseURL.appendingPathComponent(path).absoluteString + "?"
            + (cursor.map { "cursor=\($0)&" } ?? "") + "limit=\(pullPageSize)")!
    return Task { try await session.data(from: url).0 }
}

/// The raw baseline: the same pages fetched with URLSession (the next page while this one is
/// stored, as ours does), parsed with JSONSerialization and inserted with cached GRDB statements,
/// one transaction per page (1,000 rows), into the same tables (same indexes, same deferred foreign
/// keys, checked at each commit), with nothing else checked or stored: no server versions, no
/// references looked up.
///
/// Returns the pages' rows (with each page's statement) when `keepingRows` is set, for
/// ``rawStore(_:)``; otherwise none.
@discardableResult
func rawPull(_ server: PullServer, keepingRows: Bool = false) async throws -> [(
    sql: String, rows: [StatementArguments]
)] {
    var kept: [(sql: String, rows: [StatementArguments])] = []
    let (store, directory) = try makeFileStore("raw")
    defer { try? FileManager.default.removeItem(at: directory) }
    let session = makeSession()
    let dates = ISO8601DateFormatter()
    var inserted = 0
    for (path, sql) in [
        ("users", "INSERT INTO user (id, name, email, bio) VALUES (?, ?, ?, ?)"),
        ("threads", "INSERT INTO thread (id, title, createdAt, tags, ownerId) VALUES (?, ?, ?, ?, ?)"),
        ("messages", "INSERT INTO message (id, role, body, threadId, replyToId) VALUES (?, ?, ?, ?, ?)"),
    ] {
        func page(after cursor: String?) -> Task<Data, any Error> {
            listingPage(of: path, after: cursor, from: server, with: session)
        }
        // The next page is fetched while this one is stored, as ours does.
        var fetching = page(after: nil)
        while true {
            let data = try await fetching.value
            let object = try JSONSerialization.jsonObject(with: data) as! [String: Any]
            let items = object["data"] as! [[String: Any]]
            if items.isEmpty { break }
            fetching = page(after: object["next_cursor"] as? String)
            let rows: [StatementArguments] = items.map { item in
                func text(_ key: String) -> String? {
                    switch item[key] {
                    case let string as String: return string
                    case let number as NSNumber: return number.stringValue
                    default: return nil
                    }
                }
                switch path {
                case "users": return [text("id"), text("name"), text("email"), text("bio")]
                case "threads":
                    let tags = try? JSONSerialization.data(withJSONObject: item["tags"] ?? [])
                    let date = dates.date(from: text("created_at") ?? "")
                    return [
                        text("id"), text("title"), date?.timeIntervalSinceReferenceDate,
                        tags.map { String(decoding: $0, as: UTF8.self) }, text("owner_id"),
                    ]
                default: return [text("id"), text("role"), text("body"), text("thread_id"), text("reply_to_id")]
                }
            }
            try await store.writeBypassingSync { db in
                let statement = try db.cachedStatement(sql: sql)
                for row in rows { try statement.execute(arguments: row) }
            }
            inserted += rows.count
            if keepingRows { kept.append((sql, rows)) }
        }
    }
    precondition(inserted == server.rows, "raw pull stored \(inserted) of \(server.rows)")
    return kept
}

/// The baseline's storing alone: `pages` (rows already fetched and decoded) inserted into a fresh
/// file-backed store as the baseline inserts them, one transaction per page. The SQLite and GRDB
/// floor of a pull into these tables on this machine.
func rawStore(_ pages: [(sql: String, rows: [StatementArguments])]) async throws {
    let (store, directory) = try makeFileStore("raw-store")
    defer { try? FileManager.default.removeItem(at: directory) }
    for (sql, rows) in pages {
        try await store.writeBypassingSync { db in
            let statement = try db.cachedStatement(sql: sql)
            for row in rows { try statement.execute(arguments: row) }
        }
    }
}

/// What the pull's ceilings are measured with: the same pages listed as both sides list them (the
/// next page fetched while this one is handled), then not decoded, decoded as the baseline does
/// (JSONSerialization) or as ours does (`RESTRemote.list`: parse, then wire form to local fields);
/// nothing is stored. With the server in the same process on the same cores, these bound the rows
/// per second either side can reach on this machine.
enum ListingOnly: String, CaseIterable {
    case fetch = "fetch-only"
    case baselineDecode = "fetch+baseline-decode"
    case oursDecode = "fetch+ours-decode"
}

/// Lists every page of every model of `server` as `mode` says, storing nothing.
func listOnly(_ server: PullServer, _ mode: ListingOnly) async throws {
    if mode == .oursDecode {
        let remote = RESTRemote(
            configuration: .init(baseURL: server.baseURL, pageSize: pullPageSize), models: GeneratedModels.all,
            session: makeSession())
        var listed = 0
        for model in GeneratedModels.all {
            let schema = model.schema
            var fetching: Task<RemotePage, any Error>? = Task { try await remote.list(schema, after: nil) }
            while let current = fetching {
                let page = try await current.value
                let next = page.nextCursor
                fetching = page.hasMore ? Task { try await remote.list(schema, after: next) } : nil
                listed += page.records.count
            }
        }
        precondition(listed == server.rows, "listed \(listed) of \(server.rows)")
        return
    }
    let session = makeSession()
    for path in ["users", "threads", "messages"] {
        func page(after cursor: String?) -> Task<Data, any Error> {
            listingPage(of: path, after: cursor, from: server, with: session)
        }
        var fetching = page(after: nil)
        while true {
            let data = try await fetching.value
            if data.starts(with: Data(#"{"data":[]"#.utf8)) { break }
            let next: String?
            if mode == .fetch {
                // The reference server ends its listings with `"next_cursor":"…","total":…}`.
                let marker = Data(#""next_cursor":""#.utf8)
                guard let range = data.range(of: marker, options: .backwards),
                    let end = data[range.upperBound...].firstIndex(of: UInt8(ascii: "\""))
                else { preconditionFailure("no next_cursor in a listing of \(path)") }
                next = String(decoding: data[range.upperBound..<end], as: UTF8.self)
            } else {
                let object = try JSONSerialization.jsonObject(with: data) as! [String: Any]
                next = object["next_cursor"] as? String
            }
            fetching = page(after: next)
        }
    }
}

func runPullBenchmark() async throws {
    let messages = quick ? 20_000 : 100_000
    let name = quick ? "pull20k" : "pull100k"
    if shouldRun(name) { try await runPull(name, messages: messages) }
    // `--filter pull100k` leaves this out; `--filter pull` or `--filter pull1m` runs it.
    if !quick, shouldRun("pull1m") {
        // The same pull of 1,000,000 messages, for its memory only (ours; the goal is the 100k figure
        // within 64 MB).
        let large = try await PullServer.make(threads: 1_000, messages: 1_000_000)
        let before = residentMemory().current
        resetPeakMemory()
        var report = PullReport()
        let elapsed = try await measure { report = try await enginePull(large) }
        print(
            "BENCH-INFO pull1m rows=\(large.rows) ms=\(String(format: "%.0f", elapsed)) "
                + "rows/s=\(Int(Double(large.rows) / elapsed * 1000)) "
                + "peak-rss-growth=\(String(format: "%.1f", residentMemory().peak - before))MB "
                + "longest-transaction=\(report.longestTransaction)")
        await large.server.stop()
    }
}

/// `pull100k` (`pull20k` with `--quick`): ours and the baseline, alternating, from one server.
private func runPull(_ name: String, messages: Int) async throws {
    let server = try await PullServer.make(threads: 1_000, messages: messages)
    var ours: [Double] = []
    var baseline: [Double] = []
    var longest: Duration = .zero
    // Peak resident growth of each measured run, from its start (after the first pulls below):
    // the baseline's is the floor to read ours against (the in-process server's answers and
    // URLSession's buffers count in both).
    var peakGrowth: [Double] = []
    var baselineGrowth: [Double] = []
    // CPU seconds of each side (the in-process server's included): on a loaded machine, where wall
    // times also count waits for a core, the work each side does.
    var oursCPU: [Double] = []
    var baselineCPU: [Double] = []
    // One untimed pull by each side first, baseline then ours: the first pull in a process also
    // pays one-time costs (URLSession and its threads, the cooperative pool's and SQLite's
    // threads, allocator arenas, type metadata), about 20 MB of resident memory in all, which a
    // run under `--filter` would otherwise charge to whichever side runs first (a full run has
    // paid them in the benchmarks before). Both first pulls' growth is printed.
    var before = residentMemory().current
    resetPeakMemory()
    try await rawPull(server)
    let baselineFirstGrowth = residentMemory().peak - before
    before = residentMemory().current
    resetPeakMemory()
    _ = try await enginePull(server)
    let oursFirstGrowth = residentMemory().peak - before
    for _ in 0..<(quick ? 3 : 5) {
        before = residentMemory().current
        resetPeakMemory()
        var report = PullReport()
        var cpu = processorSeconds()
        ours.append(try await measure { report = try await enginePull(server) })
        oursCPU.append(processorSeconds() - cpu)
        peakGrowth.append(residentMemory().peak - before)
        longest = max(longest, report.longestTransaction)
        let baselineBefore = residentMemory().current
        resetPeakMemory()
        cpu = processorSeconds()
        baseline.append(try await measure { try await rawPull(server) })
        baselineCPU.append(processorSeconds() - cpu)
        baselineGrowth.append(residentMemory().peak - baselineBefore)
    }
    report(name, ours: ours, baseline: baseline)
    // The ceilings: the same listings with nothing stored, each mode three times, alternating, and
    // the baseline's rows stored with nothing fetched.
    var ceilings: [ListingOnly: (ms: [Double], cpu: [Double])] = [:]
    var storeOnly: (ms: [Double], cpu: [Double]) = ([], [])
    let pages = try await rawPull(server, keepingRows: true)
    for _ in 0..<3 {
        let cpu = processorSeconds()
        storeOnly.ms.append(try await measure { try await rawStore(pages) })
        storeOnly.cpu.append(processorSeconds() - cpu)
        for mode in ListingOnly.allCases {
            let cpu = processorSeconds()
            let elapsed = try await measure { try await listOnly(server, mode) }
            ceilings[mode, default: ([], [])].ms.append(elapsed)
            ceilings[mode, default: ([], [])].cpu.append(processorSeconds() - cpu)
        }
    }
    print(
        "BENCH-INFO \(name)-ceilings (nothing stored) "
            + ListingOnly.allCases.map { mode in
                let (ms, cpu) = ceilings[mode]!
                return "\(mode.rawValue) rows/s=\(Int(Double(server.rows) / ms.sorted()[1] * 1000)) "
                    + "cpu-s=\(String(format: "%.2f", cpu.sorted()[1]))"
            }.joined(separator: " ") + " baseline-store-only rows/s="
            + "\(Int(Double(server.rows) / storeOnly.ms.sorted()[1] * 1000)) "
            + "cpu-s=\(String(format: "%.2f", storeOnly.cpu.sorted()[1]))")
    let median = ours.sorted()[ours.count / 2]
    let baselineMedian = baseline.sorted()[baseline.count / 2]
    print(
        "BENCH-INFO \(name) rows=\(server.rows) rows/s=\(Int(Double(server.rows) / median * 1000)) "
            + "baseline-rows/s=\(Int(Double(server.rows) / baselineMedian * 1000)) "
            + "peak-rss-growth=\(megabytes(peakGrowth)) baseline-peak-rss-growth=\(megabytes(baselineGrowth)) "
            + "longest-transaction=\(longest) "
            + "cpu-s ours=\(String(format: "%.2f", oursCPU.sorted()[oursCPU.count / 2])) "
            + "baseline=\(String(format: "%.2f", baselineCPU.sorted()[baselineCPU.count / 2])) "
            + "first-pull-growth ours=\(String(format: "%.1f", oursFirstGrowth))MB "
            + "baseline=\(String(format: "%.1f", baselineFirstGrowth))MB")
    await server.server.stop()
}

/// The largest of per-run figures in MB, then each run's: `19.1MB(19.1,3.2,3.0)`.
private func megabytes(_ values: [Double]) -> String {
    String(format: "%.1f", values.max() ?? 0) + "MB(" + values.map { String(format: "%.1f", $0) }.joined(separator: ",")
        + ")"
}
