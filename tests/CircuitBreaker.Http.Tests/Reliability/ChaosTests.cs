using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace CircuitBreaker.Http.Tests.Reliability;

/// <summary>
/// Load and faults against real servers on loopback: a Kestrel downstream that switches every few hundred
/// milliseconds between healthy, 5xx, slow past the AttemptTimeout, resetting connections mid-body, and down;
/// and a raw TCP downstream for what Kestrel cannot do, garbage status lines (plus healthy, 5xx and down).
/// 64 concurrent callers send their requests through <c>IHttpClientFactory</c> with the breaker, the cache and
/// degraded fallbacks. Then every request must be accounted for exactly once and reconcile, call by call, with
/// what the breaker let through and what the servers received; no call may pass an open circuit; no response
/// or connection may leak; memory and threads must be back where they were; and no task exception may go
/// unobserved. Bounded in count and time; <c>CIRCUITBREAKER_LONG_TESTS=1</c> sends ten times as many requests.
/// </summary>
[Collection(WholeProcessGroup.Name)]
public sealed class ChaosTests(ITestOutputHelper output)
{
    private const int Callers = 64;
    private const int HalfOpenProbes = 2;
    private const int Warmup = 640;
    private const int RecoveryBudget = 400;
    private static readonly TimeSpan AttemptTimeout = TimeSpan.FromMilliseconds(250);
    private static readonly TimeSpan MaxBreak = TimeSpan.FromMilliseconds(600);

    private static readonly ChaosMode[] KestrelModes =
        [ChaosMode.Healthy, ChaosMode.ServerError, ChaosMode.Slow, ChaosMode.ResetMidBody, ChaosMode.Down];

    private static readonly ChaosMode[] RawModes =
        [ChaosMode.Healthy, ChaosMode.ServerError, ChaosMode.GarbageStatusLine, ChaosMode.Down];

    [Fact]
    public async Task ChaosDownstreams_EveryRequestAccountedFor_NothingPassesAnOpenCircuit_NothingLeaks()
    {
        var requests = ReliabilityRun.ChaosRequests;
        var total = Warmup + requests + RecoveryBudget;
        var seed = Environment.TickCount;
        output.WriteLine($"seed {seed}, {requests} requests, {Callers} callers");
        var clock = Stopwatch.StartNew();

        var ledger = new Ledger(total);
        var kestrelTally = new ServerTally(total);
        var rawTally = new ServerTally(total);
        await using var kestrel = new ChaosKestrel(kestrelTally, slowAnswer: TimeSpan.FromSeconds(3));
        await kestrel.StartAsync();
        await using var raw = new ChaosRawServer(rawTally);
        await raw.StartAsync();

        var time = new MonotonicTimeProvider();
        var responses = new DisposalCounter();
        var offeredToOnOpen = new DisposalCounter();
        var services = new ServiceCollection();
        services.AddSingleton<TimeProvider>(time);
        services.AddHttpClient("chaos", c => c.Timeout = TimeSpan.FromSeconds(30))
            .AddCircuitBreaker(o =>
            {
                o.FailureThreshold = 3;
                o.BreakDuration = TimeSpan.FromMilliseconds(150);
                o.BreakDurationMultiplier = 2;
                o.MaxBreakDuration = MaxBreak;
                o.HalfOpenProbes = HalfOpenProbes;
                o.AttemptTimeout = AttemptTimeout;
                o.Fallback.Cache.Enabled = true;
                o.Fallback.Cache.MaxAge = TimeSpan.FromSeconds(3);
                o.Fallback.Cache.MaxEntries = 100; // of 400 paths: many calls find nothing cached

                // Declines every call, so the chain goes on to the cache and the degraded response; the cached
                // copy it is offered is the breaker's to dispose, which the counter checks.
                o.Fallback.OnOpen = context =>
                {
                    if (context.CachedResponse is { } offered)
                    {
                        offeredToOnOpen.Track(offered);
                    }

                    return ValueTask.FromResult<HttpResponseMessage?>(null);
                };

                // Kestrel's host also has a degraded answer; the raw host has none, so its callers also see
                // CircuitOpenException when nothing is cached.
                var kestrelHost = new CircuitBreakerHostOptions();
                kestrelHost.Fallback.Degraded.Body = "degraded";
                kestrelHost.Fallback.Degraded.ContentType = "text/plain";
                o.Hosts["127.0.0.1"] = kestrelHost;
            })
            .AddHttpMessageHandler(() => new AdmissionRecorder(ledger, time))
            .ConfigurePrimaryHttpMessageHandler(() => new CountingPrimaryHandler(responses)
            {
                InnerHandler = new SocketsHttpHandler
                {
                    PooledConnectionIdleTimeout = TimeSpan.FromMilliseconds(500),
                    ConnectTimeout = TimeSpan.FromSeconds(5),
                },
            });

        await using var provider = services.BuildServiceProvider();
        var factory = provider.GetRequiredService<IHttpClientFactory>();
        var registry = provider.GetRequiredService<ICircuitBreakerRegistry>();
        var transitions = new ConcurrentQueue<Transition>();
        registry.StateChanged += (_, e) => transitions.Enqueue(new Transition(e.Key.Authority, e.PreviousState, e.State, e.Timestamp, e.BreakDuration, time.GetUtcNow()));
        var kestrelAuthority = $"http://127.0.0.1:{kestrel.Port}";
        var rawAuthority = $"http://127.0.0.2:{raw.Port}";
        string AuthorityOf(int id) => id % 3 == 0 ? rawAuthority : kestrelAuthority;

        // Warm-up with both servers healthy: JIT, connection pools, the cache; then the baseline.
        var next = 0;
        await RunCallersAsync(factory, ledger, time, AuthorityOf, () => Interlocked.Increment(ref next) - 1, limit: Warmup, deadline: TimeSpan.FromMinutes(1), seed);
        next = Math.Min(next, Warmup); // callers that drew an id past the limit did not send it
        var (memoryBefore, threadsBefore) = Measure();
        var unobserved = new ConcurrentQueue<Exception>();
        void OnUnobserved(object? sender, UnobservedTaskExceptionEventArgs e) => unobserved.Enqueue(e.Exception);
        TaskScheduler.UnobservedTaskException += OnUnobserved;
        try
        {
            // Chaos.
            using var stopSwitching = new CancellationTokenSource();
            var kestrelModesSeen = new ConcurrentDictionary<ChaosMode, int>();
            var rawModesSeen = new ConcurrentDictionary<ChaosMode, int>();
            var switching = Task.WhenAll(
                SwitchModesAsync(kestrel.SwitchAsync, KestrelModes, kestrelModesSeen, new Random(seed), stopSwitching.Token),
                SwitchModesAsync(raw.SwitchAsync, RawModes, rawModesSeen, new Random(seed + 1), stopSwitching.Token));
            var chaosStarted = clock.Elapsed;
            var deadline = TimeSpan.FromSeconds(ReliabilityRun.Long ? 900 : 90);
            await RunCallersAsync(factory, ledger, time, AuthorityOf, () => Interlocked.Increment(ref next) - 1, limit: Warmup + requests, deadline, seed);
            var chaosTook = clock.Elapsed - chaosStarted;
            await stopSwitching.CancelAsync();
            await switching;

            // Recovery: both downstreams healthy. Never stuck: once the break has passed, each circuit closes.
            await Task.Delay(MaxBreak * 2);
            next = Math.Min(next, Warmup + requests);
            var recoveryLimit = next + RecoveryBudget;
            for (var round = 0; round < 40 && registry.GetCircuits().Any(c => c.State != CircuitState.Closed); round++)
            {
                var limit = Math.Min(recoveryLimit, next + 6);
                await RunCallersAsync(factory, ledger, time, AuthorityOf, () => Interlocked.Increment(ref next) - 1, limit, TimeSpan.FromSeconds(30), seed, callers: 6, pause: false);
                next = Math.Min(next, limit);
                await Task.Delay(50);
            }

            var sent = Math.Min(next, recoveryLimit);
            var circuits = registry.GetCircuits();

            // Idle: pooled connections are closed after PooledConnectionIdleTimeout, when nothing holds them.
            var idleWait = Stopwatch.StartNew();
            while ((kestrelTally.OpenConnections > 0 || rawTally.OpenConnections > 0) && idleWait.Elapsed < TimeSpan.FromSeconds(30))
            {
                await Task.Delay(100);
            }

            var (memoryAfter, threadsAfter) = Measure();
            var transitionList = transitions.ToList();

            // Report.
            var report = new StringBuilder();
            report.AppendLine(CultureInfo.InvariantCulture, $"chaos: {sent - Warmup} requests in {chaosTook.TotalSeconds:0.0} s (+{Warmup} warm-up); total {clock.Elapsed.TotalSeconds:0.0} s");
            report.AppendLine(CultureInfo.InvariantCulture, $"outcomes: {string.Join(", ", Enum.GetValues<CallOutcome>().Select(o => $"{o} {ledger.Count(o, sent)}"))}");
            report.AppendLine(CultureInfo.InvariantCulture, $"admitted {ledger.AdmittedCount(sent)}; kestrel received {kestrelTally.Total} on {kestrelTally.ConnectionsAccepted} connections; raw received {rawTally.Total} on {rawTally.ConnectionsAccepted} connections");
            report.AppendLine(CultureInfo.InvariantCulture, $"kestrel modes {Describe(kestrelModesSeen)}; raw modes {Describe(rawModesSeen)}");
            report.AppendLine(CultureInfo.InvariantCulture, $"transitions: {string.Join(", ", transitionList.GroupBy(t => $"{(t.Authority == rawAuthority ? "raw" : "kestrel")} {t.From}->{t.To}").OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => $"{g.Key} {g.Count()}"))}");
            report.AppendLine(CultureInfo.InvariantCulture, $"responses created {responses.Created}, disposed {responses.Disposed}; cached copies offered to OnOpen {offeredToOnOpen.Created}, disposed {offeredToOnOpen.Disposed}");
            report.AppendLine(CultureInfo.InvariantCulture, $"open connections after idle: kestrel {kestrelTally.OpenConnections}, raw {rawTally.OpenConnections} (waited {idleWait.Elapsed.TotalSeconds:0.0} s)");
            report.AppendLine(CultureInfo.InvariantCulture, $"memory {memoryBefore / 1024 / 1024.0:0.0} MB -> {memoryAfter / 1024 / 1024.0:0.0} MB; threads {threadsBefore} -> {threadsAfter}; unobserved task exceptions {unobserved.Count}");
            output.WriteLine(report.ToString());

            // 1. Every request accounted for exactly once, and reconciled call by call.
            var problems = new List<string>();
            ledger.Reconcile(sent, id => (AuthorityOf(id) == rawAuthority ? rawTally : kestrelTally).Received(id), problems);
            Assert.True(ledger.Count(CallOutcome.Unexpected, sent) == 0, "unexpected exceptions: " + string.Join("; ", ledger.Unexpected.Take(5)));
            Assert.True(ledger.Count(CallOutcome.ClientTimeout, sent) == 0, "a call hung until HttpClient.Timeout");
            Assert.Equal(0, kestrelTally.Unknown + rawTally.Unknown);
            Assert.Equal(ledger.LetThroughAndReceived(sent, id => AuthorityOf(id) == kestrelAuthority, kestrelTally.Received), kestrelTally.Total);
            Assert.Equal(ledger.LetThroughAndReceived(sent, id => AuthorityOf(id) == rawAuthority, rawTally.Received), rawTally.Total);

            // 2. Nothing passed an open circuit, and half-open let through no more probes than it may.
            foreach (var authority in new[] { kestrelAuthority, rawAuthority })
            {
                CheckAdmissions(authority, transitionList, ledger, sent, AuthorityOf, problems, report);
            }

            output.WriteLine(report.ToString());
            Assert.True(problems.Count == 0, $"{problems.Count} problems:\n{string.Join("\n", problems.Take(30))}");

            // The run exercised what it claims to.
            foreach (var outcome in new[] { CallOutcome.Downstream, CallOutcome.Cache, CallOutcome.Degraded, CallOutcome.Rejected, CallOutcome.AttemptTimeout, CallOutcome.Failed })
            {
                Assert.True(ledger.Count(outcome, sent) > 0, $"no call ended as {outcome}: the chaos did not reach every path");
            }

            Assert.All(KestrelModes.Distinct(), mode => Assert.True(kestrelModesSeen.ContainsKey(mode), $"kestrel was never {mode}"));
            Assert.All(RawModes.Distinct(), mode => Assert.True(rawModesSeen.ContainsKey(mode), $"the raw server was never {mode}"));

            // Never stuck: both downstreams are healthy again, and both circuits closed.
            Assert.All(circuits, c => Assert.Equal(CircuitState.Closed, c.State));

            // 3. No leaks: every response the primary handler produced, and every cached copy the breaker offered
            // and took back, was disposed; every connection went back to idle and was closed.
            Assert.Equal(responses.Created, responses.Disposed);
            Assert.Equal(offeredToOnOpen.Created, offeredToOnOpen.Disposed);
            Assert.True(offeredToOnOpen.Created > 0, "OnOpen was never offered a cached response");
            Assert.Equal(0, kestrelTally.OpenConnections);
            Assert.Equal(0, rawTally.OpenConnections);

            // 4. Memory and threads stable (generous bounds: the cache is bounded, the ledger preallocated).
            Assert.True(memoryAfter - memoryBefore < 48L * 1024 * 1024, $"managed memory grew by {(memoryAfter - memoryBefore) / 1024 / 1024} MB");
            Assert.True(threadsAfter - threadsBefore < 64, $"threads grew from {threadsBefore} to {threadsAfter}");

            // 5. No unobserved task exceptions.
            Assert.True(unobserved.IsEmpty, "unobserved task exceptions: " + string.Join("\n", unobserved.Take(3)));
        }
        finally
        {
            TaskScheduler.UnobservedTaskException -= OnUnobserved;
        }
    }

    private static string Describe(ConcurrentDictionary<ChaosMode, int> seen) =>
        string.Join(", ", seen.OrderBy(p => p.Key).Select(p => $"{p.Key} {p.Value}"));

    private static (long Memory, int Threads) Measure()
    {
        for (var i = 0; i < 3; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }

        using var process = Process.GetCurrentProcess();
        return (GC.GetTotalMemory(forceFullCollection: true), process.Threads.Count);
    }

    /// <summary>
    /// Healthy and faulty phases alternate, every few hundred milliseconds, so that most faults hit a closed
    /// circuit; the faults come in shuffled rounds, so that each is seen several times in every run.
    /// </summary>
    private static async Task SwitchModesAsync(Func<ChaosMode, Task> switchTo, ChaosMode[] modes, ConcurrentDictionary<ChaosMode, int> seen, Random random, CancellationToken stop)
    {
        var faults = modes.Where(m => m != ChaosMode.Healthy).ToArray();
        var schedule = new Queue<ChaosMode>();
        while (!stop.IsCancellationRequested)
        {
            if (schedule.Count == 0)
            {
                foreach (var fault in faults.OrderBy(_ => random.Next()))
                {
                    schedule.Enqueue(ChaosMode.Healthy);
                    schedule.Enqueue(fault);
                }
            }

            var mode = schedule.Dequeue();
            await switchTo(mode);
            seen.AddOrUpdate(mode, 1, (_, n) => n + 1);
            try
            {
                // Healthy long enough for an open circuit to close again; slow long enough for calls to time out.
                var lasts = mode switch
                {
                    ChaosMode.Healthy => random.Next(700, 1_100),
                    ChaosMode.Slow => random.Next(600, 900),
                    _ => random.Next(250, 500),
                };
                await Task.Delay(lasts, stop);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }

        await switchTo(ChaosMode.Healthy);
    }

    private static Task RunCallersAsync(
        IHttpClientFactory factory,
        Ledger ledger,
        TimeProvider time,
        Func<int, string> authorityOf,
        Func<int> nextId,
        int limit,
        TimeSpan deadline,
        int seed,
        int callers = Callers,
        bool pause = true)
    {
        var stopAt = Stopwatch.StartNew();
        return Task.WhenAll(Enumerable.Range(0, callers).Select(caller => Task.Run(async () =>
        {
            var random = new Random(seed ^ (caller * 7919));
            using var client = factory.CreateClient("chaos");
            while (stopAt.Elapsed < deadline)
            {
                var id = nextId();
                if (id >= limit)
                {
                    return;
                }

                await CallAsync(client, ledger, time, id, new Uri($"{authorityOf(id)}/items/{random.Next(400)}"));
                if (pause)
                {
                    await Task.Delay(random.Next(40, 110));
                }
            }
        })));
    }

    private static async Task CallAsync(HttpClient client, Ledger ledger, TimeProvider time, int id, Uri uri)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, uri);
        request.Headers.Add(ChaosHeaders.RequestId, id.ToString(CultureInfo.InvariantCulture));
        ledger.Started(id, time.GetUtcNow().UtcTicks);
        try
        {
            using var response = await client.SendAsync(request);
            var fallback = response.Headers.TryGetValues("X-Circuit-Fallback", out var values) ? values.First() : null;
            ledger.Ended(id, fallback switch
            {
                null => CallOutcome.Downstream,
                "cache" => CallOutcome.Cache,
                "degraded" => CallOutcome.Degraded,
                _ => CallOutcome.Unexpected,
            }, (int)response.StatusCode);
        }
        catch (CircuitOpenException)
        {
            ledger.Ended(id, CallOutcome.Rejected);
        }
        catch (TaskCanceledException ex) when (ex.InnerException is TimeoutException)
        {
            ledger.Ended(id, ex.Message.Contains("AttemptTimeout", StringComparison.Ordinal) ? CallOutcome.AttemptTimeout : CallOutcome.ClientTimeout);
        }
        catch (HttpRequestException)
        {
            ledger.Ended(id, CallOutcome.Failed);
        }
#pragma warning disable CA1031 // Anything else is recorded and fails the test with its details.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            ledger.Ended(id, CallOutcome.Unexpected, detail: ex);
        }
    }

    /// <summary>
    /// The admission checks, with only sound conclusions: a call is known to have been let through at a moment
    /// between its caller's start and its arrival in <see cref="AdmissionRecorder"/>. A circuit is known to be open
    /// from when its opening was reported (after the state was written) until its break ends.
    /// </summary>
    private static void CheckAdmissions(string authority, List<Transition> all, Ledger ledger, int sent, Func<int, string> authorityOf, List<string> problems, StringBuilder report)
    {
        var transitions = all.Where(t => t.Authority == authority).OrderBy(t => t.Timestamp).ToList();
        var admitted = Enumerable.Range(0, sent)
            .Where(id => authorityOf(id) == authority && ledger.WasAdmitted(id))
            .Select(id => (Id: id, Start: ledger.StartTicks(id), At: ledger.AdmittedTicks(id)))
            .ToList();
        var (openWindows, halfOpenWindows, probesSeen) = (0, 0, 0);
        for (var i = 0; i < transitions.Count; i++)
        {
            var t = transitions[i];
            if (t.To != CircuitState.Open || t.Break is not { } breakDuration)
            {
                continue;
            }

            openWindows++;
            var retryAt = (t.Timestamp + breakDuration).UtcTicks;
            var knownOpen = t.ReportedAt.UtcTicks;
            foreach (var call in admitted.Where(a => a.Start >= knownOpen && a.At < retryAt))
            {
                problems.Add($"{authority}: request {call.Id} was let through while the circuit was open ({t.From}->Open at {t.Timestamp:HH:mm:ss.ffffff} for {breakDuration.TotalMilliseconds} ms)");
            }

            // Half-open until the next opening or closing: at most HalfOpenProbes in flight, and the circuit closes
            // after HalfOpenProbes successes, so at most 2 × HalfOpenProbes − 1 probes in one half-open period.
            var end = transitions.Skip(i + 1).FirstOrDefault(n => n.To is CircuitState.Open or CircuitState.Closed)?.Timestamp.UtcTicks ?? long.MaxValue;
            var probes = admitted.Count(a => a.Start >= retryAt && a.At < end);
            halfOpenWindows++;
            probesSeen += probes;
            if (probes > (2 * HalfOpenProbes) - 1)
            {
                problems.Add($"{authority}: {probes} probes let through in the half-open period after {t.Timestamp:HH:mm:ss.ffffff}");
            }
        }

        report.AppendLine(CultureInfo.InvariantCulture, $"{authority}: {admitted.Count} admitted, {openWindows} open windows checked, {halfOpenWindows} half-open periods with {probesSeen} probes");
    }

    private sealed record Transition(string Authority, CircuitState From, CircuitState To, DateTimeOffset Timestamp, TimeSpan? Break, DateTimeOffset ReportedAt);

    internal enum CallOutcome
    {
        None,
        Downstream,
        Cache,
        Degraded,
        Rejected,
        AttemptTimeout,
        ClientTimeout,
        Failed,
        Unexpected,
    }

    internal enum AdmissionOutcome
    {
        None,
        Response,
        Canceled,
        ConnectionFailed,
        Other,
    }

    /// <summary>Everything known about each request, by id, in arrays allocated before the measurements start.</summary>
    internal sealed class Ledger(int capacity)
    {
        private readonly long[] _started = new long[capacity];
        private readonly int[] _ended = new int[capacity];
        private readonly CallOutcome[] _outcome = new CallOutcome[capacity];
        private readonly int[] _status = new int[capacity];
        private readonly int[] _admitted = new int[capacity];
        private readonly long[] _admittedAt = new long[capacity];
        private readonly AdmissionOutcome[] _admission = new AdmissionOutcome[capacity];
        private readonly int[] _admissionStatus = new int[capacity];

        public ConcurrentQueue<string> Unexpected { get; } = new();

        public void Started(int id, long ticks) => _started[id] = ticks;

        public void Ended(int id, CallOutcome outcome, int status = 0, Exception? detail = null)
        {
            Interlocked.Increment(ref _ended[id]);
            _outcome[id] = outcome;
            _status[id] = status;
            if (outcome == CallOutcome.Unexpected)
            {
                Unexpected.Enqueue($"request {id}: {detail?.ToString() ?? $"status {status}"}");
            }
        }

        public void Admitted(int id, long ticks)
        {
            Interlocked.Increment(ref _admitted[id]);
            _admittedAt[id] = ticks;
        }

        public void AdmissionEnded(int id, AdmissionOutcome outcome, int status = 0)
        {
            _admission[id] = outcome;
            _admissionStatus[id] = status;
        }

        public bool WasAdmitted(int id) => Volatile.Read(ref _admitted[id]) > 0;

        public long StartTicks(int id) => _started[id];

        public long AdmittedTicks(int id) => _admittedAt[id];

        public int Count(CallOutcome outcome, int sent) => _outcome.Take(sent).Count(o => o == outcome);

        public int AdmittedCount(int sent) => _admitted.Take(sent).Sum();

        /// <summary>The requests of one server that the breaker let through and the server received: all it may have received.</summary>
        public int LetThroughAndReceived(int sent, Func<int, bool> ofServer, Func<int, int> received) =>
            Enumerable.Range(0, sent).Count(id => ofServer(id) && _admitted[id] == 1 && received(id) == 1);

        public void Reconcile(int sent, Func<int, int> serverReceived, List<string> problems)
        {
            for (var id = 0; id < sent; id++)
            {
                var (ended, outcome, admitted, received, admission) = (_ended[id], _outcome[id], _admitted[id], serverReceived(id), _admission[id]);
                string? problem = null;
                if (ended != 1)
                {
                    problem = $"ended {ended} times";
                }
                else if (admitted > 1 || received > 1)
                {
                    problem = $"let through {admitted} times, received {received} times";
                }
                else if (received > admitted)
                {
                    problem = "reached the server without passing the breaker";
                }
                else if (outcome is CallOutcome.Cache or CallOutcome.Degraded or CallOutcome.Rejected && admitted != 0)
                {
                    problem = $"answered {outcome} but was let through to the downstream";
                }
                else if (outcome is CallOutcome.Downstream or CallOutcome.AttemptTimeout or CallOutcome.Failed && admitted != 1)
                {
                    problem = $"ended as {outcome} without being let through";
                }
                else if (outcome == CallOutcome.Downstream && (admission != AdmissionOutcome.Response || received != 1 || _status[id] != _admissionStatus[id]))
                {
                    problem = $"the caller got a downstream answer {_status[id]} the breaker and server do not know of ({admission} {_admissionStatus[id]}, received {received})";
                }
                else if (admission == AdmissionOutcome.Response && received != 1)
                {
                    problem = "the breaker saw a response from a server that never received the request";
                }
                else if (outcome == CallOutcome.AttemptTimeout && admission != AdmissionOutcome.Canceled)
                {
                    problem = $"timed out for the caller, but below the breaker it ended as {admission}";
                }

                if (problem is not null)
                {
                    problems.Add($"request {id} ({outcome}): {problem}");
                }
            }
        }
    }

    /// <summary>Inside the breaker (added after it): sees exactly the calls it let through.</summary>
    private sealed class AdmissionRecorder(Ledger ledger, TimeProvider time) : DelegatingHandler
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var id = ChaosHeaders.IdOf(request);
            ledger.Admitted(id, time.GetUtcNow().UtcTicks);
            try
            {
                var response = await base.SendAsync(request, cancellationToken);
                ledger.AdmissionEnded(id, AdmissionOutcome.Response, (int)response.StatusCode);
                return response;
            }
            catch (OperationCanceledException)
            {
                ledger.AdmissionEnded(id, AdmissionOutcome.Canceled);
                throw;
            }
            catch (HttpRequestException)
            {
                ledger.AdmissionEnded(id, AdmissionOutcome.ConnectionFailed);
                throw;
            }
            catch
            {
                ledger.AdmissionEnded(id, AdmissionOutcome.Other);
                throw;
            }
        }
    }

    /// <summary>Counts the responses it sees, and their disposals, by wrapping their content.</summary>
    internal sealed class DisposalCounter
    {
        private int _created;
        private int _disposed;

        public int Created => Volatile.Read(ref _created);

        public int Disposed => Volatile.Read(ref _disposed);

        public void Track(HttpResponseMessage response)
        {
            Interlocked.Increment(ref _created);
            response.Content = new CountedContent(response.Content, this);
        }

        private void OnDisposed() => Interlocked.Increment(ref _disposed);

        private sealed class CountedContent : HttpContent
        {
            private readonly HttpContent _inner;
            private readonly DisposalCounter _counter;
            private int _disposed;

            public CountedContent(HttpContent inner, DisposalCounter counter)
            {
                _inner = inner;
                _counter = counter;
                foreach (var header in inner.Headers.NonValidated)
                {
                    Headers.TryAddWithoutValidation(header.Key, header.Value);
                }
            }

            protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => _inner.CopyToAsync(stream);

            protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken) =>
                _inner.CopyToAsync(stream, cancellationToken);

            protected override Task<Stream> CreateContentReadStreamAsync() => _inner.ReadAsStreamAsync();

            protected override Task<Stream> CreateContentReadStreamAsync(CancellationToken cancellationToken) => _inner.ReadAsStreamAsync(cancellationToken);

            protected override bool TryComputeLength(out long length)
            {
                length = _inner.Headers.ContentLength ?? 0;
                return _inner.Headers.ContentLength is not null;
            }

            protected override void Dispose(bool disposing)
            {
                if (disposing && Interlocked.Exchange(ref _disposed, 1) == 0)
                {
                    _counter.OnDisposed();
                    _inner.Dispose();
                }

                base.Dispose(disposing);
            }
        }
    }

    /// <summary>The primary handler, wrapped: every response that comes off the network is counted.</summary>
    private sealed class CountingPrimaryHandler(DisposalCounter counter) : DelegatingHandler
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var response = await base.SendAsync(request, cancellationToken);
            counter.Track(response);
            return response;
        }
    }
}
