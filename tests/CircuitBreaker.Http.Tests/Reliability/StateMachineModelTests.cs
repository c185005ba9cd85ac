using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Net;
using System.Text;
using FsCheck;
using FsCheck.Fluent;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace CircuitBreaker.Http.Tests.Reliability;

/// <summary>
/// The circuit's state machine proven against a reference model: FsCheck generates random sequences of calls
/// (admitted, then succeeding, failing with a 5xx, timing out, refused, or cancelled by the caller, with many
/// calls in flight at once), time passing, reloads with new settings, isolation and reset. Each step runs on
/// the real <see cref="CircuitStateMachine"/> (on a <see cref="FakeTimeProvider"/>) and on <see cref="Model"/>,
/// and after every step the state, the counters, the probes in flight and the decision for the next call must
/// agree, and the invariants must hold. Failures are shrunk to a short sequence of steps.
/// </summary>
[Collection(WholeProcessGroup.Name)] // CPU-bound for seconds: kept out of the parallel phase, where timing-sensitive tests run
public sealed class StateMachineModelTests
{
    private static readonly DateTimeOffset Start = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    [Fact]
    public void RandomOperations_RealMachineAgreesWithTheModel_AndTheInvariantsHold()
    {
        var cases = ReliabilityRun.ModelCases;
        var config = Config.QuickThrowOnFailure.WithMaxTest(cases).WithQuietOnSuccess(true).WithEndSize(150);
        Prop.ForAll(Arb.From(CaseGen, Shrink), (Action<Case>)Run).Check(config);
    }

    /// <summary>A few hand-picked sequences that the generator reaches only by luck, run the same way.</summary>
    [Fact]
    public void EdgeSequences_RealMachineAgreesWithTheModel()
    {
        var settings = Settings(threshold: 2, probes: 2, breakMs: 1_000, multiplier: 2, maxBreakMs: 3_000);
        Op[] twoFailuresThenProbes =
        [
            new StartCall(), new StartCall(), new StartCall(),
            new CompleteCall(0, Outcome.Status5xx, 0), new CompleteCall(0, Outcome.Timeout, 0),
            new CompleteCall(0, Outcome.Success, 0), // a permit of the closed period, ignored while open
            new AdvanceToRetry(-1), new StartCall(), new AdvanceToRetry(0), new StartCall(), new StartCall(), new StartCall(),
            new CompleteCall(1, Outcome.CallerCancelled, 0), new StartCall(), new CompleteCall(0, Outcome.Success, 0),
            new CompleteCall(0, Outcome.Refused, 0), // a failed probe re-opens for 2 s
            new AdvanceToRetry(0), new StartCall(), new CompleteCall(0, Outcome.Status5xx, 0), // 3 s, the cap
            new AdvanceToRetry(0), new StartCall(), new StartCall(), new CompleteCall(0, Outcome.Success, 0), new CompleteCall(0, Outcome.Success, 0),
            new StartCall(), new CompleteCall(0, Outcome.Status5xx, 0), new StartCall(), new CompleteCall(0, Outcome.Status5xx, 0), // closed < a full break: 3 s again
            new AdvanceToRetry(0), new StartCall(), new ReloadSettings(settings with { HalfOpenProbes = 1 }), new CompleteCall(0, Outcome.Success, 0),
            new AdvanceTime(TimeSpan.FromSeconds(3)), new StartCall(), new CompleteCall(0, Outcome.Status5xx, 0), new StartCall(), new CompleteCall(0, Outcome.Status5xx, 0), // closed a full break: growth reset
            new IsolateCircuit(), new AdvanceTime(TimeSpan.FromMinutes(10)), new StartCall(), new ResetCircuit(), new StartCall(),
        ];
        Run(new Case(settings, twoFailuresThenProbes));

        var ratio = Settings(threshold: 0, ratio: 0.5, minimumThroughput: 4, samplingMs: 1_000, breakMs: 500);
        Op[] ratioOverTheWindow =
        [
            new StartCall(), new CompleteCall(0, Outcome.Status5xx, 0), new AdvanceTime(TimeSpan.FromMilliseconds(950)),
            new StartCall(), new CompleteCall(0, Outcome.Success, 0), new AdvanceTime(TimeSpan.FromMilliseconds(100)),
            new StartCall(), new CompleteCall(0, Outcome.Success, 0), new StartCall(), new CompleteCall(0, Outcome.Status5xx, 0),
            new StartCall(), new CompleteCall(0, Outcome.Status5xx, 0), new StartCall(), new CompleteCall(0, Outcome.Status5xx, RetryAfterSeconds: 7),
            new AdvanceToRetry(0), new StartCall(), new CompleteCall(0, Outcome.Success, 0),
            new ReloadSettings(ratio with { SamplingDuration = TimeSpan.FromSeconds(2) }), new ReloadSettings(ratio with { FailureRatio = 0 }),
        ];
        Run(new Case(ratio, ratioOverTheWindow));
    }

    private static BreakerSettings Settings(
        int threshold = 3,
        double ratio = 0,
        int minimumThroughput = 10,
        int samplingMs = 30_000,
        int breakMs = 30_000,
        double multiplier = 1,
        int maxBreakMs = 300_000,
        int probes = 1,
        double jitter = 0) => new(
            FailureThreshold: threshold,
            FailureRatio: ratio,
            MinimumThroughput: minimumThroughput,
            SamplingDuration: TimeSpan.FromMilliseconds(samplingMs),
            BreakDuration: TimeSpan.FromMilliseconds(breakMs),
            BreakDurationMultiplier: multiplier,
            MaxBreakDuration: TimeSpan.FromMilliseconds(maxBreakMs),
            HalfOpenProbes: probes,
            BreakDurationJitter: jitter);

    /// <summary>
    /// The same property one level up, through the real <see cref="CircuitBreakerHandler"/> of an
    /// <c>IHttpClientFactory</c> client: each outcome is produced the way it happens in production (a 503 with or
    /// without Retry-After, a 404, an <see cref="HttpRequestException"/>, the caller's token, and time passing
    /// beyond <c>AttemptTimeout</c> on the <see cref="FakeTimeProvider"/>), and what the caller sees is checked too.
    /// </summary>
    [Fact]
    public void RandomCallsThroughTheHandler_AgreeWithTheModel_AndTheInvariantsHold()
    {
        var cases = Math.Max(1, ReliabilityRun.ModelCases / 10);
        var config = Config.QuickThrowOnFailure.WithMaxTest(cases).WithQuietOnSuccess(true).WithEndSize(100);
        var handlerCases =
            from c in CaseGen
            from timeoutMs in Gen.Elements(50, 1_000, 10_000)
            select new HandlerCase(c with { Ops = [.. c.Ops.Where(o => o is not ReloadSettings)] }, TimeSpan.FromMilliseconds(timeoutMs));
        Prop.ForAll(Arb.From(handlerCases, h => Shrink(h.Case).Select(c => h with { Case = c })), (Action<HandlerCase>)RunThroughHandler).Check(config);
    }

    internal sealed record HandlerCase(Case Case, TimeSpan AttemptTimeout)
    {
        public override string ToString() => $"AttemptTimeout {AttemptTimeout}, {Case}";
    }

    private static readonly Uri Downstream = new("http://downstream.test/x");

    private static void RunThroughHandler(HandlerCase hc)
    {
        var (c, attemptTimeout) = (hc.Case, hc.AttemptTimeout);
        var time = new FakeTimeProvider(Start);
        var downstream = new ScriptedDownstream();
        var services = new ServiceCollection();
        services.AddSingleton<TimeProvider>(time);
        services.AddHttpClient("model")
            .AddCircuitBreaker(o =>
            {
                var s = c.Initial;
                (o.FailureThreshold, o.FailureRatio, o.MinimumThroughput, o.SamplingDuration) = (s.FailureThreshold, s.FailureRatio, s.MinimumThroughput, s.SamplingDuration);
                (o.BreakDuration, o.BreakDurationMultiplier, o.MaxBreakDuration, o.BreakDurationJitter) = (s.BreakDuration, s.BreakDurationMultiplier, s.MaxBreakDuration, s.BreakDurationJitter);
                o.HalfOpenProbes = s.HalfOpenProbes;
                o.AttemptTimeout = attemptTimeout;
                o.HonorRetryAfter = true;
            })
            .ConfigurePrimaryHttpMessageHandler(() => downstream)
            .SetHandlerLifetime(Timeout.InfiniteTimeSpan); // no expiry timer to keep thousands of cases' handlers alive
        using var provider = services.BuildServiceProvider();
        var registry = provider.GetRequiredService<CircuitBreakerRegistry>();
        using var invoker = new HttpMessageInvoker(provider.GetRequiredService<IHttpMessageHandlerFactory>().CreateHandler("model"), disposeHandler: false);
        var transitions = new List<(CircuitState From, CircuitState To, DateTimeOffset At, TimeSpan? Break)>();
        registry.StateChanged += (_, e) => transitions.Add((e.PreviousState, e.State, e.Timestamp, e.BreakDuration));

        // The circuit exists from the first call on: a successful one, for both.
        var model = new Model(c.Initial, time);
        var firstPermit = model.Acquire();
        var first = invoker.SendAsync(new HttpRequestMessage(HttpMethod.Get, Downstream), CancellationToken.None);
        downstream.Calls[^1].Answer.SetResult(new HttpResponseMessage(HttpStatusCode.OK));
        first.GetAwaiter().GetResult().Dispose();
        model.OnSuccess(firstPermit);
        var key = new CircuitKey("model", "http://downstream.test:80");
        registry.GetClient("model").TryGet(new HostKey(Downstream), out var entry);
        var machine = entry!.Machine;

        var pending = new List<PendingCall>();
        var verifier = new Verifier(machine, model, time, transitions, () => pending.Select(p => p.Permit), hc);

        // What the caller's await gives: the response, or the exception as thrown (a cancelled task keeps its own).
        Exception? Settle(Task<HttpResponseMessage> task)
        {
            if (!((IAsyncResult)task).AsyncWaitHandle.WaitOne(TimeSpan.FromSeconds(10)))
            {
                verifier.Fail("a call did not complete after its outcome");
            }

            try
            {
                task.GetAwaiter().GetResult();
                return null;
            }
            catch (Exception ex)
            {
                return ex;
            }
        }

        // Moves the clock to target, stopping at each call's AttemptTimeout on the way: there the call must end as
        // a timeout for its caller, and count as a failure.
        void AdvanceTo(DateTimeOffset target, string step)
        {
            while (pending.Where(p => p.Deadline <= target).OrderBy(p => p.Deadline).FirstOrDefault() is { } due)
            {
                time.Advance(due.Deadline - time.GetUtcNow());
                foreach (var call in pending.Where(p => p.Deadline <= time.GetUtcNow()).ToList())
                {
                    pending.Remove(call);
                    var error = Settle(call.Task);
                    if (error is not TaskCanceledException { InnerException: TimeoutException })
                    {
                        verifier.Fail($"a call past its AttemptTimeout ended as {error?.GetType().Name ?? call.Task.Status.ToString()}, not a timeout");
                    }

                    model.OnFailure(call.Permit, null, machine);
                }

                verifier.Check($"{step}: AttemptTimeout elapsed");
            }

            if (target > time.GetUtcNow())
            {
                time.Advance(target - time.GetUtcNow());
            }
        }

        verifier.Check("start");
        for (var i = 0; i < c.Ops.Length; i++)
        {
            var op = c.Ops[i];
            var step = $"{i}: {op}";
            switch (op)
            {
                case StartCall:
                    {
                        var expected = model.Acquire();
                        var arrived = downstream.Calls.Count;
                        var caller = new CancellationTokenSource();
                        var task = invoker.SendAsync(new HttpRequestMessage(HttpMethod.Get, Downstream), caller.Token);
                        if (downstream.Calls.Count > arrived)
                        {
                            verifier.AgreeDecision(step, expected, expected.Kind == CircuitPermitKind.Rejected ? CircuitPermitKind.Closed : expected.Kind, default, null);
                            pending.Add(new PendingCall(task, caller, downstream.Calls[^1], expected, time.GetUtcNow() + attemptTimeout));
                        }
                        else
                        {
                            var error = Settle(task);
                            caller.Dispose();
                            if (error is not CircuitOpenException open)
                            {
                                verifier.Fail($"{step}: a call that did not reach the downstream ended as {error?.GetType().Name ?? task.Status.ToString()}");
                                return;
                            }

                            verifier.AgreeDecision(step, expected, CircuitPermitKind.Rejected, open.State, open.RetryAfter);
                        }

                        break;
                    }

                case CompleteCall complete when pending.Count > 0:
                    {
                        var call = pending[complete.Slot % pending.Count];
                        var before = (machine.GetSnapshot(), machine.State, transitions.Count);
                        if (complete.Outcome == Outcome.Timeout)
                        {
                            // Hangs until its AttemptTimeout: time passes (other calls may time out first).
                            AdvanceTo(call.Deadline, step);
                            break;
                        }

                        pending.Remove(call);
                        switch (complete.Outcome)
                        {
                            case Outcome.Success:
                                {
                                    using var response = new HttpResponseMessage(complete.Slot % 2 == 0 ? HttpStatusCode.OK : HttpStatusCode.NotFound);
                                    call.Downstream.Answer.SetResult(response);
                                    Settle(call.Task);
                                    verifier.Agree($"{step}: the response the caller gets", response, call.Task.Result);
                                    model.OnSuccess(call.Permit);
                                    break;
                                }

                            case Outcome.Status5xx:
                                {
                                    using var response = new HttpResponseMessage(HttpStatusCode.ServiceUnavailable);
                                    if (complete.RetryAfterSeconds > 0)
                                    {
                                        response.Headers.RetryAfter = new System.Net.Http.Headers.RetryConditionHeaderValue(TimeSpan.FromSeconds(complete.RetryAfterSeconds));
                                    }

                                    call.Downstream.Answer.SetResult(response);
                                    Settle(call.Task);
                                    verifier.Agree($"{step}: the failing response the caller gets, unchanged", response, call.Task.Result);
                                    model.OnFailure(call.Permit, complete.RetryAfterSeconds > 0 ? TimeSpan.FromSeconds(complete.RetryAfterSeconds) : null, machine);
                                    break;
                                }

                            case Outcome.Refused:
                                {
                                    var refused = new HttpRequestException(HttpRequestError.ConnectionError, "Connection refused (downstream.test:80)");
                                    call.Downstream.Answer.SetException(refused);
                                    verifier.Agree<Exception?>($"{step}: the exception the caller gets", refused, Settle(call.Task));
                                    model.OnFailure(call.Permit, null, machine);
                                    break;
                                }

                            default:
                                {
                                    call.Caller.Cancel();
                                    var error = Settle(call.Task);
                                    if (error is not OperationCanceledException cancelled || cancelled.InnerException is TimeoutException)
                                    {
                                        verifier.Fail($"{step}: the caller's cancellation surfaced as {error?.ToString() ?? call.Task.Status.ToString()}");
                                    }

                                    model.Release(call.Permit);

                                    // Invariant: the caller's cancellation never changes the state (only frees a probe slot).
                                    if (before.Item1 != machine.GetSnapshot() || before.State != machine.State || before.Count != transitions.Count)
                                    {
                                        verifier.Fail($"{step}: cancelling a call changed the circuit: {before.Item1} -> {machine.GetSnapshot()}");
                                    }

                                    break;
                                }
                        }

                        call.Caller.Dispose();
                        break;
                    }

                case CompleteCall:
                    break;

                case AdvanceTime advance:
                    AdvanceTo(time.GetUtcNow() + advance.By, step);
                    break;

                case AdvanceToRetry toRetry:
                    if (model.State == CircuitState.Open && model.RetryAt + TimeSpan.FromTicks(toRetry.OffsetTicks) is var target && target > time.GetUtcNow())
                    {
                        AdvanceTo(target, step);
                    }

                    break;

                case IsolateCircuit:
                    registry.Isolate(key);
                    model.Isolate();
                    break;

                case ResetCircuit:
                    registry.Reset(key);
                    model.Reset();
                    break;

                default:
                    throw new UnreachableException(op.ToString());
            }

            verifier.Check(step);
        }

        // Never stuck: the calls still hanging are ended by AttemptTimeout; then, with a healthy downstream and
        // time passing, the circuit closes (an isolated one once an operator resets it).
        AdvanceTo(time.GetUtcNow() + attemptTimeout, "heal: hanging calls time out");
        verifier.Check("heal: hanging calls timed out");
        if (machine.State == CircuitState.Isolated)
        {
            registry.Reset(key);
            model.Reset();
            verifier.Check("heal: reset by hand");
        }

        for (var round = 0; machine.State != CircuitState.Closed; round++)
        {
            if (round > 2 * (model.Settings.HalfOpenProbes + 2))
            {
                verifier.Fail("stuck: the downstream is healthy and time passed, but the circuit did not close");
            }

            if (machine.State == CircuitState.Open)
            {
                AdvanceTo(model.RetryAt, "heal: the break elapses");
                verifier.Check("heal: the break elapsed");
            }

            var expected = model.Acquire();
            var arrived = downstream.Calls.Count;
            var task = invoker.SendAsync(new HttpRequestMessage(HttpMethod.Get, Downstream), CancellationToken.None);
            if (downstream.Calls.Count == arrived)
            {
                verifier.Fail($"stuck: a {machine.State} circuit with no call in flight turned a probe away");
            }

            verifier.AgreeDecision("heal: decision", expected, expected.Kind, default, null);
            downstream.Calls[^1].Answer.SetResult(new HttpResponseMessage(HttpStatusCode.OK));
            Settle(task);
            task.Result.Dispose();
            model.OnSuccess(expected);
            verifier.Check("heal: healthy call");
        }
    }

    private sealed record PendingCall(Task<HttpResponseMessage> Task, CancellationTokenSource Caller, ScriptedDownstream.Call Downstream, Model.Permit Permit, DateTimeOffset Deadline);

    /// <summary>
    /// The primary handler: each call waits until the test answers it, or until its token (AttemptTimeout or the
    /// caller) cancels it. Completions run inline, so the breaker has recorded an outcome when the test goes on.
    /// </summary>
    private sealed class ScriptedDownstream : HttpMessageHandler
    {
        public List<Call> Calls { get; } = [];

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var answer = new TaskCompletionSource<HttpResponseMessage>();
            var registration = cancellationToken.Register(() => answer.TrySetCanceled(cancellationToken));
            Calls.Add(new Call(answer));
            return answer.Task.ContinueWith(
                t =>
                {
                    registration.Dispose();
                    return t;
                },
                CancellationToken.None,
                TaskContinuationOptions.ExecuteSynchronously,
                TaskScheduler.Default).Unwrap();
        }

        internal sealed record Call(TaskCompletionSource<HttpResponseMessage> Answer);
    }

    // ---------------------------------------------------------------------------------------------------------
    // Operations and their generators
    // ---------------------------------------------------------------------------------------------------------

    internal enum Outcome
    {
        Success,
        Status5xx,
        Timeout,
        Refused,
        CallerCancelled,
    }

    internal abstract record Op;

    /// <summary>A caller asks for a permit; if it is granted, the call is in flight until a <see cref="CompleteCall"/> ends it.</summary>
    internal sealed record StartCall : Op;

    /// <summary>Ends the in-flight call at <c>Slot</c> modulo the number in flight (nothing when none is).</summary>
    internal sealed record CompleteCall(int Slot, Outcome Outcome, int RetryAfterSeconds) : Op;

    internal sealed record AdvanceTime(TimeSpan By) : Op;

    /// <summary>Moves the clock to the moment the open circuit may be probed, plus <c>OffsetTicks</c> (when that is ahead).</summary>
    internal sealed record AdvanceToRetry(int OffsetTicks) : Op;

    internal sealed record ReloadSettings(BreakerSettings Settings) : Op;

    internal sealed record IsolateCircuit : Op;

    internal sealed record ResetCircuit : Op;

    internal sealed record Case(BreakerSettings Initial, Op[] Ops)
    {
        public override string ToString()
        {
            var text = new StringBuilder().Append("initial ").AppendLine(Initial.ToString());
            for (var i = 0; i < Ops.Length; i++)
            {
                text.Append("  ").Append(i).Append(": ").AppendLine(Ops[i].ToString());
            }

            return text.ToString();
        }
    }

    private static readonly Gen<BreakerSettings> SettingsGen =
        from threshold in Gen.Elements(0, 1, 2, 3, 5)
        from ratio in Gen.Elements(0.0, 0.0, 0.0, 0.25, 0.5, 1.0)
        from minimumThroughput in Gen.Choose(1, 6)
        from samplingMs in Gen.Elements(333, 1_000, 3_000, 10_000)
        from breakMs in Gen.Elements(1, 500, 1_000, 2_500, 10_000)
        from multiplier in Gen.Elements(1.0, 1.5, 2.0, 3.0)
        from maxBreakMs in Gen.Elements(1, 2_000, 10_000, 60_000)
        from probes in Gen.Frequency((3, Gen.Constant(1)), (2, Gen.Choose(2, 4)))
        from jitter in Gen.Frequency((4, Gen.Constant(0.0)), (1, Gen.Elements(0.1, 0.5, 0.99)))
        where threshold > 0 || ratio > 0
        select Settings(threshold, ratio, minimumThroughput, samplingMs, breakMs, multiplier, maxBreakMs, probes, jitter);

    private static readonly Gen<Outcome> OutcomeGen = Gen.Frequency(
        (35, Gen.Constant(Outcome.Success)),
        (25, Gen.Constant(Outcome.Status5xx)),
        (10, Gen.Constant(Outcome.Timeout)),
        (10, Gen.Constant(Outcome.Refused)),
        (20, Gen.Constant(Outcome.CallerCancelled)));

    private static readonly Gen<Op> OpGen = Gen.Frequency(
        (34, Gen.Constant<Op>(new StartCall())),
        (30, from slot in Gen.Choose(0, 1_000)
             from outcome in OutcomeGen
             from retryAfter in Gen.Frequency((6, Gen.Constant(0)), (1, Gen.Choose(1, 120)))
             select (Op)new CompleteCall(slot, outcome, outcome == Outcome.Status5xx ? retryAfter : 0)),
        (14, from ms in Gen.Elements(0, 1, 100, 333, 999, 1_000, 5_000, 30_000, 120_000, 3_600_000)
             select (Op)new AdvanceTime(TimeSpan.FromMilliseconds(ms))),
        (8, Gen.Elements(-1, 0, 0, 1).Select(offset => (Op)new AdvanceToRetry(offset))),
        (6, SettingsGen.Select(s => (Op)new ReloadSettings(s))),
        (3, Gen.Constant<Op>(new IsolateCircuit())),
        (5, Gen.Constant<Op>(new ResetCircuit())));

    private static readonly Gen<Case> CaseGen =
        from settings in SettingsGen
        from length in Gen.Sized(size => Gen.Choose(5, 20 + (2 * size)))
        from ops in Gen.ArrayOf(OpGen, length)
        select new Case(settings, ops);

    /// <summary>Shrinks a failing case by dropping ever smaller runs of steps, then by simplifying its settings.</summary>
    private static IEnumerable<Case> Shrink(Case failing)
    {
        var ops = failing.Ops;
        for (var chunk = ops.Length / 2; chunk >= 1; chunk /= 2)
        {
            for (var start = 0; start + chunk <= ops.Length; start += chunk)
            {
                yield return failing with { Ops = [.. ops[..start], .. ops[(start + chunk)..]] };
            }
        }

        if (failing.Initial.BreakDurationJitter > 0)
        {
            yield return failing with { Initial = failing.Initial with { BreakDurationJitter = 0 } };
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // Running a case on both
    // ---------------------------------------------------------------------------------------------------------

    private static void Run(Case c)
    {
        var time = new FakeTimeProvider(Start);
        var transitions = new List<(CircuitState From, CircuitState To, DateTimeOffset At, TimeSpan? Break)>();
        using var machine = new CircuitStateMachine(c.Initial, time, t => transitions.Add((t.PreviousState, t.State, t.Timestamp, t.BreakDuration)));
        var model = new Model(c.Initial, time);
        var inFlight = new List<(CircuitPermit Real, Model.Permit Model)>();
        var verifier = new Verifier(machine, model, time, transitions, () => inFlight.Select(p => p.Model), c.Initial);
        void Check(string step) => verifier.Check(step);
        void Fail(string what) => verifier.Fail(what);
        void AgreePermit(string what, Model.Permit expected, CircuitPermit actual) => verifier.AgreePermit(what, expected, actual);

        Check("start");
        for (var i = 0; i < c.Ops.Length; i++)
        {
            var op = c.Ops[i];
            switch (op)
            {
                case StartCall:
                    {
                        var expected = model.Acquire();
                        var actual = machine.TryAcquire();
                        AgreePermit("decision", expected, actual);
                        if (actual.IsGranted)
                        {
                            inFlight.Add((actual, expected));
                        }

                        break;
                    }

                case CompleteCall complete when inFlight.Count > 0:
                    {
                        var index = complete.Slot % inFlight.Count;
                        var (real, modelPermit) = inFlight[index];
                        inFlight.RemoveAt(index);
                        var before = (machine.GetSnapshot(), machine.State, transitions.Count);
                        var requestedBreak = complete.RetryAfterSeconds > 0 ? TimeSpan.FromSeconds(complete.RetryAfterSeconds) : (TimeSpan?)null;
                        switch (complete.Outcome)
                        {
                            case Outcome.Success:
                                machine.OnSuccess(real);
                                model.OnSuccess(modelPermit);
                                break;
                            case Outcome.CallerCancelled:
                                machine.Release(real);
                                model.Release(modelPermit);
                                break;
                            default:
                                machine.OnFailure(real, complete.Outcome.ToString(), requestedBreak);
                                model.OnFailure(modelPermit, requestedBreak, machine);
                                break;
                        }

                        // Invariant: the caller's cancellation never changes the state (only frees a probe slot).
                        if (complete.Outcome == Outcome.CallerCancelled
                            && (before.Item1 != machine.GetSnapshot() || before.State != machine.State || before.Count != transitions.Count))
                        {
                            Fail($"cancelling a call changed the circuit: {before.Item1} -> {machine.GetSnapshot()}");
                        }

                        break;
                    }

                case CompleteCall:
                    break;

                case AdvanceTime advance:
                    time.Advance(advance.By);
                    break;

                case AdvanceToRetry toRetry:
                    {
                        if (model.State == CircuitState.Open && model.RetryAt + TimeSpan.FromTicks(toRetry.OffsetTicks) is var target && target > time.GetUtcNow())
                        {
                            time.Advance(target - time.GetUtcNow());
                        }

                        break;
                    }

                case ReloadSettings reload:
                    machine.UpdateSettings(reload.Settings);
                    model.UpdateSettings(reload.Settings);
                    break;

                case IsolateCircuit:
                    machine.Isolate();
                    model.Isolate();
                    break;

                case ResetCircuit:
                    machine.Reset();
                    model.Reset();
                    break;

                default:
                    throw new UnreachableException(op.ToString());
            }

            Check($"{i}: {op}");
        }

        // Invariant: never stuck. The calls still in flight end (a hung one is ended by AttemptTimeout, a
        // failure), then the downstream is healthy and time passes: the circuit must close, unless an operator
        // isolated it, which holds until a reset.
        while (inFlight.Count > 0)
        {
            var (real, modelPermit) = inFlight[^1];
            inFlight.RemoveAt(inFlight.Count - 1);
            machine.OnFailure(real, "timeout");
            model.OnFailure(modelPermit, null, machine);
            Check("heal: in-flight call timed out");
        }

        if (machine.State == CircuitState.Isolated)
        {
            time.Advance(TimeSpan.FromDays(2));
            Check("heal: a long time passes");
            if (machine.State != CircuitState.Isolated)
            {
                Fail("an isolated circuit left isolation by itself");
            }

            machine.Reset();
            model.Reset();
            Check("heal: reset by hand");
        }

        for (var round = 0; machine.State != CircuitState.Closed; round++)
        {
            if (round > 2 * (model.Settings.HalfOpenProbes + 2))
            {
                Fail("stuck: the downstream is healthy and time passed, but the circuit did not close");
            }

            if (machine.State == CircuitState.Open)
            {
                time.Advance(model.RetryAt - time.GetUtcNow());
                Check("heal: the break elapses");
            }

            var expected = model.Acquire();
            var probe = machine.TryAcquire();
            AgreePermit("heal: decision", expected, probe);
            if (!probe.IsGranted)
            {
                Fail($"stuck: a {machine.State} circuit with no call in flight turned a probe away");
            }

            machine.OnSuccess(probe);
            model.OnSuccess(expected);
            Check("heal: healthy call");
        }
    }

    /// <summary>Compares the real machine with the model after a step, and checks the invariants.</summary>
    private sealed class Verifier(
        CircuitStateMachine machine,
        Model model,
        FakeTimeProvider time,
        List<(CircuitState From, CircuitState To, DateTimeOffset At, TimeSpan? Break)> transitions,
        Func<IEnumerable<Model.Permit>> inFlight,
        object initial)
    {
        private readonly StringBuilder _trace = new StringBuilder().Append("initial ").AppendLine(initial.ToString());

        public void Trace(string line) => _trace.Append("  ").AppendLine(line);

        [DoesNotReturn]
        public void Fail(string what) =>
            throw new ModelMismatchException($"{what}\n--- steps run (real machine state after each) ---\n{_trace}");

        public void Check(string step)
        {
            // The decision for the next call, asked of both and given back at once (the model moves an open
            // circuit whose break has elapsed to half-open when asked; the real one may have done so on its timer).
            var expected = model.Acquire();
            var actual = machine.TryAcquire();
            var probesWhileAsked = machine.ProbesInFlight;
            model.Release(expected);
            machine.Release(actual);
            if (probesWhileAsked > model.ProbeLimitThisPeriod)
            {
                Fail($"{probesWhileAsked} probes in flight, more than the {model.ProbeLimitThisPeriod} HalfOpenProbes allowed");
            }

            var snapshot = machine.GetSnapshot();
            var state = machine.State;
            var probes = machine.ProbesInFlight;
            _trace.Append("  ").Append(step).Append(" -> ").Append(state)
                .Append(" failures=").Append(snapshot.ConsecutiveFailures)
                .Append(" probes=").Append(probes)
                .Append(" ratio=").Append(snapshot.FailureRatio?.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture) ?? "-")
                .Append(" retryAt=+").Append(snapshot.RetryAt is { } r ? (r - Start).ToString() : "-")
                .Append(" now=+").Append(time.GetUtcNow() - Start)
                .Append(" inFlight=").Append(inFlight().Count())
                .AppendLine();

            AgreePermit($"decision for the next call after {step}", expected, actual);
            Agree("state", model.EffectiveState, state);
            Agree("snapshot state", model.EffectiveState, snapshot.State);
            Agree("consecutive failures", model.ConsecutiveFailures, snapshot.ConsecutiveFailures);
            Agree("failure ratio", model.FailureRatio, snapshot.FailureRatio);
            Agree("probes in flight", model.ProbesInFlight, probes);
            Agree("opened at", model.EffectiveState == CircuitState.Closed ? null : model.OpenedAt, snapshot.OpenedAt);
            Agree("out of closed for", model.EffectiveState == CircuitState.Closed ? null : time.GetUtcNow() - model.LeftClosedAt, snapshot.OutOfClosedFor);
            Agree("retry at", model.EffectiveState is CircuitState.Open or CircuitState.HalfOpen ? model.RetryAt : null, snapshot.RetryAt);
            Agree("failed probes", model.FailedProbes, snapshot.FailedProbes);
            Agree("transitions so far", model.Transitions.Count, transitions.Count);
            for (var t = 0; t < transitions.Count; t++)
            {
                var (from, to, at, breakDuration) = model.Transitions[t];
                var real = transitions[t];
                Agree($"transition {t}", $"{from}->{to} at +{at - Start} break {breakDuration}", $"{real.From}->{real.To} at +{real.At - Start} break {real.Break}");
            }

            // Invariant: never more probes in flight than HalfOpenProbes allowed during this half-open period
            // (a reload may lower the limit below the probes already let in; it must not let in more).
            if (probes > model.ProbeLimitThisPeriod)
            {
                Fail($"{probes} probes in flight, more than the {model.ProbeLimitThisPeriod} HalfOpenProbes allowed");
            }

            // The model's own bookkeeping: its probe count is the number of its current probe permits in flight.
            Agree("model probes vs. current probe permits", inFlight().Count(model.IsCurrentProbe), model.ProbesInFlight);
        }

        public void Agree<T>(string what, T expected, T actual)
        {
            if (!EqualityComparer<T>.Default.Equals(expected, actual))
            {
                Fail($"{what}: model says {expected?.ToString() ?? "null"}, real says {actual?.ToString() ?? "null"}");
            }
        }

        public void AgreePermit(string what, Model.Permit expected, CircuitPermit actual) =>
            AgreeDecision(what, expected, actual.Kind, actual.RejectedState, actual.RetryAfter);

        public void AgreeDecision(string what, Model.Permit expected, CircuitPermitKind kind, CircuitState rejectedState, TimeSpan? retryAfter)
        {
            var same = expected.Kind == kind
                && (expected.Kind != CircuitPermitKind.Rejected
                    || (expected.RejectedState == rejectedState && expected.RetryAfter == retryAfter));
            if (!same)
            {
                Fail($"{what}: model says {expected.Kind} {expected.RejectedState} retry {expected.RetryAfter}, real says {kind} {rejectedState} retry {retryAfter}");
            }

            // Invariants: an open or isolated circuit never lets a call through.
            if (kind != CircuitPermitKind.Rejected && model.StateBeforeLastAcquire is CircuitState.Open or CircuitState.Isolated)
            {
                Fail($"a call was let through while the circuit was {model.StateBeforeLastAcquire}");
            }
        }
    }

    private sealed class ModelMismatchException(string message) : Exception(message);

    // ---------------------------------------------------------------------------------------------------------
    // The reference model
    // ---------------------------------------------------------------------------------------------------------

    /// <summary>
    /// The circuit breaker's rules written as plainly as possible, from issue 2 and the README: no locks, no
    /// timers, no ring buffer. Open → half-open is decided when asked (the break has elapsed), the rolling window
    /// is a list of every outcome with the bucket it falls in. Each permit remembers the period it was given in;
    /// an outcome reported for an earlier period is ignored.
    /// </summary>
    internal sealed class Model(BreakerSettings settings, TimeProvider time)
    {
        private const int Buckets = 10;

        private readonly List<(long Bucket, bool Failed)> _window = [];
        private bool _windowOn = settings.FailureRatio > 0;
        private long _period;
        private int _probeSuccesses;
        private TimeSpan _lastBreak;
        private DateTimeOffset _closedAt = time.GetUtcNow();

        public BreakerSettings Settings { get; private set; } = settings;

        /// <summary>Every state change, as the registry's StateChanged reports it: from, to, when, and the break when it opened.</summary>
        public List<(CircuitState From, CircuitState To, DateTimeOffset At, TimeSpan? Break)> Transitions { get; } = [];

        public CircuitState State { get; private set; } = CircuitState.Closed;

        public CircuitState StateBeforeLastAcquire { get; private set; }

        public int ConsecutiveFailures { get; private set; }

        public int ProbesInFlight { get; private set; }

        public int ProbeLimitThisPeriod { get; private set; }

        public int FailedProbes { get; private set; }

        public DateTimeOffset RetryAt { get; private set; }

        public DateTimeOffset? OpenedAt { get; private set; }

        public DateTimeOffset? LeftClosedAt { get; private set; }

        private DateTimeOffset Now => time.GetUtcNow();

        /// <summary>An open circuit whose break has elapsed is reported as half-open: a probe is due.</summary>
        public CircuitState EffectiveState => State == CircuitState.Open && Now >= RetryAt ? CircuitState.HalfOpen : State;

        public double? FailureRatio
        {
            get
            {
                if (!_windowOn)
                {
                    return null;
                }

                var (total, failures) = ReadWindow();
                return total == 0 ? 0 : (double)failures / total;
            }
        }

        public bool IsCurrentProbe(Permit permit) => permit.Kind == CircuitPermitKind.Probe && permit.Period == _period && State == CircuitState.HalfOpen;

        public Permit Acquire()
        {
            StateBeforeLastAcquire = EffectiveState;
            if (State == CircuitState.Open && Now >= RetryAt)
            {
                NewPeriod(CircuitState.HalfOpen);
            }

            switch (State)
            {
                case CircuitState.Closed:
                    return new Permit(CircuitPermitKind.Closed, _period, CircuitState.Closed, null);
                case CircuitState.HalfOpen when ProbesInFlight < Settings.HalfOpenProbes:
                    ProbesInFlight++;
                    return new Permit(CircuitPermitKind.Probe, _period, CircuitState.HalfOpen, null);
                case CircuitState.Open:
                    return new Permit(CircuitPermitKind.Rejected, -1, CircuitState.Open, RetryAt - Now);
                default:
                    return new Permit(CircuitPermitKind.Rejected, -1, State, null);
            }
        }

        public void OnSuccess(Permit permit)
        {
            if (!IsCurrent(permit))
            {
                return;
            }

            if (permit.Kind == CircuitPermitKind.Closed)
            {
                ConsecutiveFailures = 0;
                Record(failed: false);
                return;
            }

            ProbesInFlight--;
            _probeSuccesses++;
            if (_probeSuccesses >= Settings.HalfOpenProbes)
            {
                Close();
            }
        }

        /// <param name="permit">The call's permit.</param>
        /// <param name="requestedBreak">The server's Retry-After, if any.</param>
        /// <param name="real">Read only to learn the random jitter the real machine drew, after checking its bounds.</param>
        public void OnFailure(Permit permit, TimeSpan? requestedBreak, CircuitStateMachine real)
        {
            if (!IsCurrent(permit))
            {
                return;
            }

            if (permit.Kind == CircuitPermitKind.Probe)
            {
                FailedProbes++;
                Open(fromHalfOpen: true, requestedBreak, real);
                return;
            }

            ConsecutiveFailures++;
            var trips = Settings.FailureThreshold > 0 && ConsecutiveFailures >= Settings.FailureThreshold;
            if (_windowOn)
            {
                Record(failed: true);
                var (total, failures) = ReadWindow();
                trips |= total >= Settings.MinimumThroughput && failures >= Settings.FailureRatio * total;
            }

            if (trips)
            {
                Open(fromHalfOpen: false, requestedBreak, real);
            }
        }

        /// <summary>A call the caller cancelled: its probe slot is free again, nothing else changes.</summary>
        public void Release(Permit permit)
        {
            if (permit.Kind == CircuitPermitKind.Probe && IsCurrent(permit))
            {
                ProbesInFlight--;
            }
        }

        public void Isolate()
        {
            if (State == CircuitState.Isolated)
            {
                return;
            }

            if (State == CircuitState.Closed)
            {
                LeftClosedAt = Now;
            }

            OpenedAt = Now;
            NewPeriod(CircuitState.Isolated);
        }

        public void Reset()
        {
            _lastBreak = TimeSpan.Zero;
            if (State == CircuitState.Closed)
            {
                ConsecutiveFailures = 0;
                _window.Clear();
            }
            else
            {
                Close();
            }
        }

        public void UpdateSettings(BreakerSettings settings)
        {
            var samplingChanged = settings.SamplingDuration != Settings.SamplingDuration;
            var oldLength = BucketLength;
            Settings = settings;
            if (settings.FailureRatio <= 0)
            {
                _windowOn = false;
                _window.Clear();
            }
            else if (!_windowOn)
            {
                _windowOn = true;
                _window.Clear();
            }
            else if (samplingChanged)
            {
                // The samples stay: each moves to the bucket of the new length that holds the latest instant of its old
                // bucket, never later than now. Those outside the old window were gone already.
                var now = time.GetTimestamp();
                var moved = _window
                    .Where(s => s.Bucket > (now / oldLength) - Buckets)
                    .Select(s => (Bucket: Math.Min(((s.Bucket + 1) * oldLength) - 1, now) / BucketLength, s.Failed))
                    .ToList();
                _window.Clear();
                _window.AddRange(moved);
            }

            if (State == CircuitState.HalfOpen)
            {
                ProbeLimitThisPeriod = Math.Max(ProbeLimitThisPeriod, settings.HalfOpenProbes);
            }

            // A running break ends no later than the new settings' longest break from now; it is never lengthened.
            var longest = settings.MaxBreakDuration > settings.BreakDuration ? settings.MaxBreakDuration : settings.BreakDuration;
            if (State == CircuitState.Open && Now + longest < RetryAt)
            {
                RetryAt = Now + longest;
                _lastBreak = _lastBreak > longest ? longest : _lastBreak;
            }
        }

        private bool IsCurrent(Permit permit) =>
            permit.Period == _period
            && State == (permit.Kind == CircuitPermitKind.Probe ? CircuitState.HalfOpen : CircuitState.Closed);

        private void NewPeriod(CircuitState state)
        {
            Transitions.Add((State, state, Now, null));
            _period++;
            State = state;
            ProbesInFlight = 0;
            _probeSuccesses = 0;
            ProbeLimitThisPeriod = state == CircuitState.HalfOpen ? Settings.HalfOpenProbes : 0;
        }

        private void Close()
        {
            NewPeriod(CircuitState.Closed);
            _closedAt = Now;
            ConsecutiveFailures = 0;
            FailedProbes = 0;
            _window.Clear();
        }

        private void Open(bool fromHalfOpen, TimeSpan? requestedBreak, CircuitStateMachine real)
        {
            // The break: what the server asked for (capped by MaxBreakDuration, or BreakDuration when longer), else BreakDuration the first
            // time and after the circuit stayed closed for a full break, else the previous break grown by the
            // multiplier, capped (the cap limits growth only). Jitter spreads the break actually waited, not
            // the one the growth is computed from.
            TimeSpan breakDuration;
            var jittered = false;
            if (requestedBreak is { } requested && requested > TimeSpan.Zero)
            {
                var longest = Settings.MaxBreakDuration > Settings.BreakDuration ? Settings.MaxBreakDuration : Settings.BreakDuration;
                breakDuration = requested < longest ? requested : longest;
            }
            else if (_lastBreak == TimeSpan.Zero || (!fromHalfOpen && Now - _closedAt >= _lastBreak))
            {
                breakDuration = Settings.BreakDuration;
                jittered = true;
            }
            else
            {
                var cap = Math.Max(Settings.MaxBreakDuration.Ticks, Settings.BreakDuration.Ticks);
                var grown = _lastBreak.Ticks * Settings.BreakDurationMultiplier;
                var next = grown >= cap ? cap : (long)grown;
                breakDuration = TimeSpan.FromTicks(Math.Max(next, Settings.BreakDuration.Ticks));
                jittered = true;
            }

            if (State == CircuitState.Closed)
            {
                LeftClosedAt = Now;
            }

            _lastBreak = breakDuration;
            OpenedAt = Now;
            NewPeriod(CircuitState.Open);
            RetryAt = Now + breakDuration;
            Transitions[^1] = Transitions[^1] with { Break = breakDuration };
            if (jittered && Settings.BreakDurationJitter > 0)
            {
                // The draw is random: check it lies within ±jitter of the break, then follow it.
                var actual = real.GetSnapshot().RetryAt!.Value - Now;
                var low = Math.Max(1, (long)(breakDuration.Ticks * (1 - Settings.BreakDurationJitter))) - 1;
                var high = (long)Math.Ceiling(breakDuration.Ticks * (1 + Settings.BreakDurationJitter)) + 1;
                if (actual.Ticks < low || actual.Ticks > high)
                {
                    throw new ModelMismatchException($"a jittered break of {actual} is outside ±{Settings.BreakDurationJitter} of {breakDuration}");
                }

                RetryAt = Now + actual;
                Transitions[^1] = Transitions[^1] with { Break = actual };
            }
        }

        private long BucketLength =>
            Math.Max(1, (long)(Settings.SamplingDuration.TotalSeconds * time.TimestampFrequency) / Buckets);

        private void Record(bool failed)
        {
            if (_windowOn)
            {
                _window.Add((time.GetTimestamp() / BucketLength, failed));
            }
        }

        /// <summary>The outcomes in the current bucket and the nine before it.</summary>
        private (int Total, int Failures) ReadWindow()
        {
            var current = time.GetTimestamp() / BucketLength;
            var inWindow = _window.Where(s => s.Bucket > current - Buckets).ToList();
            return (inWindow.Count, inWindow.Count(s => s.Failed));
        }

        internal readonly record struct Permit(CircuitPermitKind Kind, long Period, CircuitState RejectedState, TimeSpan? RetryAfter);
    }
}
