using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace CircuitBreaker.Http.Redis;

/// <summary>
/// Shares this instance's circuit decisions with the fleet through Redis, and applies the fleet's decisions here.
/// </summary>
/// <remarks>
/// <para>
/// Nothing here is on the request path. A circuit's own transitions arrive through the registry's
/// <see cref="ICircuitBreakerRegistry.StateChanged"/> event, which only queues them; one background loop talks to
/// Redis. Decisions of other instances arrive on a pub/sub channel and are applied through
/// <see cref="ICircuitFleetControl"/>.
/// </para>
/// <para>
/// The protocol: an instance whose circuit opens on its own votes for it (a sorted set per circuit, scored with Redis's
/// clock); when the votes within the window reach the quorum, that instance marks the circuit open for the fleet and
/// publishes it, and every instance opens it and holds its probe. After the break, every instance races for a lease;
/// the winner probes and publishes the verdict: closed (everyone closes) or open again (everyone waits once more).
/// The lease expires after <see cref="RedisCoordinationOptions.ProbeWait"/>, and so does every other instance's hold,
/// so a prober that crashed cannot keep the fleet open.
/// </para>
/// <para>
/// While Redis cannot be reached, holds are released and circuits decide locally; Redis's outage is logged once, shown by
/// the <c>circuit.fleet.connected</c> gauge and the fleet health check, and the connection is retried by
/// StackExchange.Redis. When it is back, this instance re-reads the fleet's open circuits, re-votes its own and withdraws
/// the votes of those that closed meanwhile.
/// </para>
/// </remarks>
internal sealed class RedisFleetCoordinator : IHostedService, IAsyncDisposable
{
    private readonly RedisCoordinationOptions _options;
    private readonly QuorumRule _quorum;
    private readonly ICircuitBreakerRegistry _registry;
    private readonly ICircuitFleetControl _control;
    private readonly CoordinatedClients _clients;
    private readonly TimeProvider _timeProvider;
    private readonly GuardedLogger _logger;
    private readonly FleetMetrics _metrics;
    private readonly Channel<Work> _work = Channel.CreateBounded<Work>(new BoundedChannelOptions(4096)
    {
        FullMode = BoundedChannelFullMode.DropOldest,
        SingleReader = true,
    });

    // Circuits this instance holds for the fleet, and those it won the probe lease for; keyed by Field().
    private readonly ConcurrentDictionary<string, CircuitKey> _held = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, CircuitKey> _probing = new(StringComparer.Ordinal);

    // Circuits this instance's vote may still be counted for in Redis; only the loop reads and writes it. A withdrawal
    // that could not be sent while Redis was away is sent when it is back, from here.
    private readonly Dictionary<string, CircuitKey> _voted = new(StringComparer.Ordinal);

    private readonly RedisKey _instancesKey;
    private readonly RedisKey _openKey;
    private readonly string _keyPrefix;
    private readonly RedisChannel _channel;
    private readonly CancellationTokenSource _stopping = new();

    // How long disposing waits for the connection's close: a healthy Redis answers within a round trip.
    private static readonly TimeSpan CloseGrace = TimeSpan.FromMilliseconds(500);

    private ConnectionMultiplexer? _redis;
    private Task? _running;
    private int _available; // 1 while Redis answers; written by the loop and by the connection's events
    private int _outageLogged; // 1 once the current outage was logged: an outage is logged once, not per failed call
    private bool _subscribed;
    private bool _joined; // whether this instance has joined the fleet once; only the loop reads and writes it
    private int _disposed;
    private int _leaving; // 1 once stopping or disposing began: an operation left in flight may then fail as the connection closes

    public RedisFleetCoordinator(
        IOptions<RedisCoordinationOptions> options,
        ICircuitBreakerRegistry registry,
        ICircuitFleetControl control,
        CoordinatedClients clients,
        TimeProvider timeProvider,
        IMeterFactory meterFactory,
        ILogger<RedisFleetCoordinator> logger)
    {
        _options = options.Value;
        _ = QuorumRule.TryParse(_options.Quorum, out _quorum); // validated at start-up
        _registry = registry;
        _control = control;
        _clients = clients;
        _timeProvider = timeProvider;
        // Guarded: the coordinator logs from its own catch blocks, and a provider that threw there would end its loop for good.
        _logger = new GuardedLogger(logger);
        _metrics = new FleetMetrics(meterFactory, () => IsAvailable, _logger);
        // The suffix makes the identity unique even when every instance is given the same name through shared
        // configuration: instances sharing an identity would count as one vote and ignore each other's decisions. An
        // empty name (an unset pod-name variable) would leave the suffix alone to tell the instance by.
        InstanceName = string.Create(
            CultureInfo.InvariantCulture,
            $"{(string.IsNullOrWhiteSpace(_options.InstanceName) ? $"{Environment.MachineName}:{Environment.ProcessId}" : _options.InstanceName)}:{Guid.NewGuid().ToString("N")[..8]}");
        _keyPrefix = "{" + _options.KeyPrefix + "}:";
        _instancesKey = _keyPrefix + "instances";
        _openKey = _keyPrefix + "open";
        _channel = RedisChannel.Literal(_options.KeyPrefix + ":events");
    }

    /// <summary>This instance's identity in the fleet: its configured name (or the machine name and process id) and a random suffix.</summary>
    public string InstanceName { get; }

    /// <summary>Whether Redis answered the last time it was asked; while it does not, circuits decide locally.</summary>
    public bool IsAvailable => Volatile.Read(ref _available) == 1;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _registry.StateChanged += OnStateChanged;

        // Connecting happens in the background: an app must start, and serve, while Redis is down.
        _running = Task.Run(() => RunAsync(_stopping.Token), CancellationToken.None);
        return Task.CompletedTask;
    }

    /// <remarks>
    /// Prompt whatever Redis does: the host's shutdown budget (<c>HostOptions.ShutdownTimeout</c>) is shared with every
    /// other hosted service, and a stalled Redis would answer nothing before StackExchange.Redis's command timeout. The
    /// loop ends without waiting for its operation in flight, whose result no longer matters.
    /// </remarks>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _registry.StateChanged -= OnStateChanged;
        Volatile.Write(ref _leaving, 1);
        await _stopping.CancelAsync().ConfigureAwait(false);
        if (_running is not null)
        {
            await _running.WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        // A stopped coordinator hears no verdict of the fleet's any more: as when Redis is away, the circuits it held
        // decide locally, instead of turning calls away until the probe wait ends.
        _control.ReleaseAll();

        // The loop has ended, so nothing this instance sends after the leave can add it back to the fleet.
        if (_redis is { IsConnected: true } redis && IsAvailable)
        {
            try
            {
                // Leaving politely lets a percentage quorum count the fleet without this instance at once. It is a
                // courtesy, not waited for: the entry expires after InstanceExpiry anyway (every heartbeat trims the
                // instances), and the connection's close (DisposeAsync) lets it reach Redis first.
                await redis.GetDatabase().SortedSetRemoveAsync(_instancesKey, InstanceName, CommandFlags.FireAndForget).ConfigureAwait(false);
            }
#pragma warning disable CA1031 // Stopping must not fail because Redis did; the entry expires anyway.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                Log.OperationFailed(_logger, ex, "leave the fleet");
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        // Registered both as itself and as a hosted service, so the container disposes it twice.
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        _registry.StateChanged -= OnStateChanged;
        Volatile.Write(ref _leaving, 1);
        await _stopping.CancelAsync().ConfigureAwait(false);
        if (_running is not null)
        {
            await _running.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        if (_redis is { } redis)
        {
            await CloseAsync(redis).ConfigureAwait(false);
        }

        // The loop has ended, and nothing else uses the token: an operation it left in flight does not take it.
        _stopping.Dispose();
    }

    /// <summary>
    /// Closes the connection without holding the host's shutdown: a healthy Redis answers the close's QUIT (sent after
    /// the leave, so the leave has reached it) at once; a stalled one would not before its timeout, so past
    /// <see cref="CloseGrace"/> the close completes in the background.
    /// </summary>
    private async Task CloseAsync(ConnectionMultiplexer redis)
    {
        try
        {
            if (!IsAvailable)
            {
                // Redis is away: nothing to send, no QUIT to wait for.
                await redis.CloseAsync(allowCommandsToComplete: false).ConfigureAwait(false);
            }

            var closing = redis.DisposeAsync().AsTask();
            _ = closing.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

            // The system clock, not _timeProvider: this bounds a wait on the network, as Redis's own timeouts do.
            await closing.WaitAsync(CloseGrace, TimeProvider.System).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
#pragma warning disable CA1031 // Disposing must not fail because Redis did.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            Log.OperationFailed(_logger, ex, "close the connection to Redis");
        }
    }

    /// <summary>Runs on the thread of the call (or the operator's, or the fleet message's) that moved the circuit: it only queues.</summary>
    private void OnStateChanged(object? sender, CircuitStateChangedEventArgs e)
    {
        if (!_clients.Includes(e.Key.ClientName))
        {
            return;
        }

        if (e.Source == CircuitChangeSource.Local)
        {
            _work.Writer.TryWrite(new Work(WorkKind.Transition, e.Key, e.PreviousState, e.State, e.BreakDuration));
        }
        else if (e.State is CircuitState.Closed or CircuitState.Isolated)
        {
            // Only this instance's own decisions are shared: a fleet decision applied here must not be echoed back, nor
            // count as a vote. But a circuit no longer open here, whoever closed or isolated it, must stop counting
            // towards the quorum, or one more failing instance would open it for everyone. The circuit no longer waits
            // for the fleet either; forgetting that now rather than in the loop keeps a fleet open that arrives
            // meanwhile from being forgotten with it.
            var field = Field(e.Key);
            _held.TryRemove(field, out _);
            _probing.TryRemove(field, out _);
            _work.Writer.TryWrite(new Work(WorkKind.Withdraw, e.Key, e.PreviousState, e.State, null));
        }
    }

    private async Task RunAsync(CancellationToken cancellationToken)
    {
        try
        {
            var configuration = ConfigurationOptions.Parse(_options.ConnectionString!);
            configuration.AbortOnConnectFail = false;
            configuration.ClientName ??= "circuitbreaker-fleet";
            _redis = await ConnectAsync(configuration, cancellationToken).ConfigureAwait(false);
            _redis.ConnectionFailed += (_, e) => MarkUnavailable(e.Exception, e.FailureType.ToString());
            _redis.ConnectionRestored += (_, _) => _work.Writer.TryWrite(new Work(WorkKind.Heartbeat, default, default, default, null));

            using var heartbeat = new PeriodicTimer(_options.HeartbeatInterval, _timeProvider);
            var heartbeats = HeartbeatLoopAsync(heartbeat, cancellationToken);
            _work.Writer.TryWrite(new Work(WorkKind.Heartbeat, default, default, default, null));
            await foreach (var work in _work.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                // Stopping does not wait for the operation in flight (a stalled Redis answers only at the command
                // timeout): it goes on alone, catching what fails once the connection is closed, and touches nothing
                // the stop uses.
                await HandleAsync(work).WaitAsync(cancellationToken).ConfigureAwait(false);
            }

            await heartbeats.ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
#pragma warning disable CA1031 // The fleet is an addition: whatever goes wrong here, the circuits go on locally.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            Log.OperationFailed(_logger, ex, "coordinate");
            MarkUnavailable(ex, "stopped");
        }
    }

    /// <summary>Connects, or gives up as soon as the coordinator stops; a connection made after that is closed at once.</summary>
    private static async Task<ConnectionMultiplexer> ConnectAsync(ConfigurationOptions configuration, CancellationToken cancellationToken)
    {
        var connecting = ConnectionMultiplexer.ConnectAsync(configuration);
        try
        {
            return await connecting.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            _ = CloseWhenConnectedAsync(connecting);
            throw;
        }

        static async Task CloseWhenConnectedAsync(Task<ConnectionMultiplexer> connecting)
        {
            try
            {
                var redis = await connecting.ConfigureAwait(false);
                await redis.CloseAsync(allowCommandsToComplete: false).ConfigureAwait(false);
                await redis.DisposeAsync().ConfigureAwait(false);
            }
#pragma warning disable CA1031 // Nobody waits for this connection any more: whatever it does is of no consequence.
            catch (Exception)
#pragma warning restore CA1031
            {
            }
        }
    }

    private async Task HeartbeatLoopAsync(PeriodicTimer timer, CancellationToken cancellationToken)
    {
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
            {
                _work.Writer.TryWrite(new Work(WorkKind.Heartbeat, default, default, default, null));
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task HandleAsync(Work work)
    {
        var redis = _redis!;
        if (work.Kind == WorkKind.Heartbeat)
        {
            await HeartbeatAsync(redis).ConfigureAwait(false);
            return;
        }

        if (!IsAvailable)
        {
            return; // the circuit decided locally; a vote from before the outage would be stale when Redis returns
        }

        try
        {
            await ShareAsync(redis.GetDatabase(), work).ConfigureAwait(false);
        }
#pragma warning disable CA1031 // A failed share leaves the circuit deciding locally; it never reaches a request.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            if (Volatile.Read(ref _leaving) == 0) // once leaving, an operation left in flight fails as the connection closes
            {
                Log.OperationFailed(_logger, ex, $"share the {work.State} circuit of {work.Key.Authority}");
                if (ex is RedisTimeoutException or RedisConnectionException)
                {
                    // Redis did not answer, and what was to be shared is lost: as away, this instance rejoins at the first
                    // heartbeat that reaches Redis again, which shares its open circuits anew. (A failure that says nothing
                    // about Redis, such as an entry this instance cannot apply, must not do so.)
                    MarkUnavailable(ex, ex.Message);
                }
            }
        }
    }

    private async Task HeartbeatAsync(ConnectionMultiplexer redis)
    {
        try
        {
            var db = redis.GetDatabase();
            await db.ScriptEvaluateAsync(
                FleetScripts.Heartbeat,
                [_instancesKey, _openKey],
                [InstanceName, (long)_options.InstanceExpiry.TotalMilliseconds, (long)_options.ProbeWait.TotalMilliseconds]).ConfigureAwait(false);
            if (!_subscribed)
            {
                await redis.GetSubscriber().SubscribeAsync(_channel, OnMessage).ConfigureAwait(false);
                _subscribed = true;
            }

            if (Interlocked.Exchange(ref _available, 1) == 0)
            {
                await RejoinAsync(db).ConfigureAwait(false);
            }
        }
#pragma warning disable CA1031 // Redis being away is an expected state, not an error to throw.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            MarkUnavailable(ex, ex.Message);
        }
    }

    /// <summary>
    /// After start-up or an outage: takes on the fleet's open circuits, votes again for the circuits this instance
    /// opened while it could not tell anyone, and withdraws the votes of those that closed meanwhile.
    /// </summary>
    private async Task RejoinAsync(IDatabase db)
    {
        if (Interlocked.Exchange(ref _outageLogged, 0) == 1)
        {
            Log.Restored(_logger);
        }

        // Also after an outage the instance started in: FleetConnected is the one event that names it.
        if (!_joined)
        {
            _joined = true;
            if (_logger.IsEnabled(LogLevel.Information))
            {
                var endpoints = string.Join(", ", _redis!.GetEndPoints().Select(e => e.ToString()));
                Log.Connected(_logger, InstanceName, endpoints);
            }
        }

        var snapshot = (RedisResult[]?)await db.ScriptEvaluateAsync(
            FleetScripts.Snapshot,
            [_openKey],
            [(long)_options.ProbeWait.TotalMilliseconds]).ConfigureAwait(false) ?? [];
        Dictionary<string, CircuitState>? here = null; // the circuits of this instance, and their state
        for (var i = 0; i + 1 < snapshot.Length; i += 2)
        {
            if (TryParseField((string)snapshot[i]!, out var key) && _clients.Includes(key.ClientName))
            {
                var left = TimeSpan.FromMilliseconds((long)snapshot[i + 1]);
                if (left > TimeSpan.Zero)
                {
                    Hold(key, left);
                    continue;
                }

                if (here is null)
                {
                    here = new Dictionary<string, CircuitState>(StringComparer.Ordinal);
                    foreach (var circuit in _registry.GetCircuits())
                    {
                        here[Field(circuit.Key)] = circuit.State;
                    }
                }

                // A break already over still holds the circuit while the fleet's probe may report: for the rest of the
                // probe wait, as on the instances that were there when the break began. But not a circuit closed here:
                // its calls go through (its own probe succeeded while Redis was away, say), which is the verdict the
                // others still wait for; holding it would turn away calls that succeed.
                var field = Field(key);
                CircuitState? stateHere = here.TryGetValue(field, out var state) ? state : null;
                if (stateHere == CircuitState.Closed)
                {
                    continue;
                }

                // Nor a circuit half-open here whose lease still names this instance: it is the fleet's prober from
                // before the outage, and the fleet waits for the verdict of its probe, which may be in flight. Holding
                // it would reopen the circuit, so that probe's outcome would be ignored, and leave the fleet with no
                // prober. It goes on as the prober: the verdict of its probe (this one or the next) is published.
                if (stateHere == CircuitState.HalfOpen
                    && await db.StringGetAsync(LeaseKey(field)).ConfigureAwait(false) == InstanceName)
                {
                    _probing[field] = key;
                    Log.ProbeLeaseWon(_logger, key.Authority, key.ClientName);
                    continue;
                }

                Hold(key, TimeSpan.Zero, _options.ProbeWait + left);
            }
        }

        var states = new Dictionary<string, CircuitState>(StringComparer.Ordinal);
        foreach (var circuit in _registry.GetCircuits())
        {
            if (!_clients.Includes(circuit.ClientName))
            {
                continue;
            }

            var field = Field(circuit.Key);
            states[field] = circuit.State;
            if (circuit.State == CircuitState.Open && !_held.ContainsKey(field))
            {
                var remaining = circuit.RetryAt is { } retryAt ? retryAt - _timeProvider.GetUtcNow() : TimeSpan.Zero;
                if (remaining > TimeSpan.Zero)
                {
                    await VoteAsync(db, circuit.Key, remaining).ConfigureAwait(false);
                }
            }
        }

        // A circuit that closed (or was isolated, or evicted) while Redis was away still has the vote it cast before, which
        // would count towards the quorum for the rest of the window: one more failing instance would open it for all.
        foreach (var (field, key) in _voted.ToList())
        {
            var state = states.GetValueOrDefault(field, CircuitState.Closed);
            if (state is CircuitState.Closed or CircuitState.Isolated)
            {
                await WithdrawVoteAsync(db, key, state).ConfigureAwait(false);
            }
        }
    }

    private async Task ShareAsync(IDatabase db, Work work)
    {
        var field = Field(work.Key);
        if (work.Kind == WorkKind.Withdraw)
        {
            // An operator's Reset or Isolate, or a fleet close applied here: no verdict to publish, since no probe of
            // this instance's proved anything.
            await WithdrawVoteAsync(db, work.Key, work.State).ConfigureAwait(false);
            return;
        }

        switch (work.State)
        {
            case CircuitState.Open when work.PreviousState == CircuitState.HalfOpen && _probing.TryRemove(field, out _):
                // The fleet's probe failed here: the whole fleet backs off again, and probes once more after the break.
                var again = work.BreakDuration ?? TimeSpan.Zero;
                await db.ScriptEvaluateAsync(FleetScripts.Reopen, [_openKey, LeaseKey(field)], [field, (long)again.TotalMilliseconds]).ConfigureAwait(false);
                Log.FleetOpened(_logger, work.Key.Authority, work.Key.ClientName, again, InstanceName); // as the quorum's decider logs it
                await PublishAsync(FleetMessage.OpenType, work.Key, again).ConfigureAwait(false);
                Hold(work.Key, again);
                break;

            case CircuitState.Open:
                await VoteAsync(db, work.Key, work.BreakDuration ?? TimeSpan.Zero).ConfigureAwait(false);
                break;

            case CircuitState.HalfOpen when _held.ContainsKey(field):
                if ((long)await db.ScriptEvaluateAsync(FleetScripts.Lease, [LeaseKey(field)], [InstanceName, (long)_options.ProbeWait.TotalMilliseconds]).ConfigureAwait(false) == 1
                    && _control.GrantProbe(work.Key))
                {
                    _probing[field] = work.Key;
                    _metrics.Record("probe", work.Key.ClientName);
                    Log.ProbeLeaseWon(_logger, work.Key.Authority, work.Key.ClientName);
                }
                else
                {
                    Log.ProbeLeaseLost(_logger, work.Key.Authority, work.Key.ClientName);
                }

                break;

            case CircuitState.Closed:
                _held.TryRemove(field, out _);
                if (_probing.TryRemove(field, out _))
                {
                    await db.ScriptEvaluateAsync(FleetScripts.Close, [_openKey, VotesKey(field)], [field]).ConfigureAwait(false);
                    _voted.Remove(field);
                    await PublishAsync(FleetMessage.CloseType, work.Key, TimeSpan.Zero).ConfigureAwait(false);
                    _metrics.Record("close", work.Key.ClientName);
                    Log.FleetClosed(_logger, work.Key.Authority, work.Key.ClientName, InstanceName);
                }
                else
                {
                    await WithdrawVoteAsync(db, work.Key, work.State).ConfigureAwait(false);
                }

                break;
        }
    }

    /// <summary>The circuit is no longer open here on this instance's own evidence: it no longer counts towards opening it for everyone.</summary>
    private async Task WithdrawVoteAsync(IDatabase db, CircuitKey key, CircuitState state)
    {
        var field = Field(key);
        var removed = await db.SortedSetRemoveAsync(VotesKey(field), InstanceName).ConfigureAwait(false);
        _voted.Remove(field);
        if (removed)
        {
            Log.VoteWithdrawn(_logger, key.Authority, key.ClientName, state);
        }
    }

    private async Task VoteAsync(IDatabase db, CircuitKey key, TimeSpan breakDuration)
    {
        var field = Field(key);
        _voted[field] = key;
        var result = (RedisResult[]?)await db.ScriptEvaluateAsync(
            FleetScripts.Vote,
            [VotesKey(field), _instancesKey, _openKey, LeaseKey(field)],
            [
                InstanceName,
                (long)_options.QuorumWindow.TotalMilliseconds,
                (long)_options.InstanceExpiry.TotalMilliseconds,
                _quorum.Count,
                _quorum.Percent,
                QuorumRule.MinimumForPercent,
                field,
                (long)breakDuration.TotalMilliseconds,
            ]).ConfigureAwait(false);
        if (result is not { Length: 4 })
        {
            return;
        }

        var decision = (long)result[0];
        Log.Voted(_logger, key.Authority, key.ClientName, (long)result[1], (long)result[3], (long)result[2]);
        if (decision == 1)
        {
            await PublishAsync(FleetMessage.OpenType, key, breakDuration).ConfigureAwait(false);
            Log.FleetOpened(_logger, key.Authority, key.ClientName, breakDuration, InstanceName);
            Hold(key, breakDuration);
        }
    }

    private async Task PublishAsync(string type, CircuitKey key, TimeSpan breakDuration)
    {
        var message = new FleetMessage(type, key.ClientName, key.Authority, (long)breakDuration.TotalMilliseconds, InstanceName);
        await _redis!.GetSubscriber()
            .PublishAsync(_channel, JsonSerializer.Serialize(message, FleetJsonContext.Default.FleetMessage))
            .ConfigureAwait(false);
    }

    /// <summary>Runs on StackExchange.Redis's pub/sub thread for every message of the fleet's channel.</summary>
    private void OnMessage(RedisChannel channel, RedisValue value)
    {
        try
        {
            var message = JsonSerializer.Deserialize((string)value!, FleetJsonContext.Default.FleetMessage);
            if (message is null || message.Instance == InstanceName || !_clients.Includes(message.Client))
            {
                return;
            }

            var key = new CircuitKey(message.Client, message.Authority);
            switch (message.Type)
            {
                case FleetMessage.OpenType:
                    Log.FleetOpened(_logger, key.Authority, key.ClientName, TimeSpan.FromMilliseconds(message.BreakMilliseconds), message.Instance);
                    Hold(key, TimeSpan.FromMilliseconds(message.BreakMilliseconds));
                    break;
                case FleetMessage.CloseType:
                    var field = Field(key);
                    _held.TryRemove(field, out _);
                    _probing.TryRemove(field, out _);
                    if (_control.Close(key))
                    {
                        _metrics.Record("close", key.ClientName);
                        Log.FleetClosed(_logger, key.Authority, key.ClientName, message.Instance);
                    }

                    break;
            }
        }
#pragma warning disable CA1031 // A malformed message, or one for a client this instance cannot build, is skipped.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            Log.OperationFailed(_logger, ex, "apply a fleet message");
        }
    }

    /// <summary>
    /// Applies the fleet's open to this instance's circuit. A decision this instance cannot apply (a client whose options
    /// are invalid here, an authority it cannot parse, an entry written by another build sharing the key prefix) is
    /// skipped on its own: it says nothing about Redis, so it must neither stop the other decisions nor count as an outage.
    /// </summary>
    private void Hold(CircuitKey key, TimeSpan breakDuration, TimeSpan? probeWait = null)
    {
        // Once stopped, the circuits decide locally (see StopAsync), yet the connection still hears the fleet until it is
        // disposed, and an operation the loop left in flight may still end here: a hold now would wait for a verdict this
        // instance no longer takes part in, turning calls away until the probe wait ends.
        if (Volatile.Read(ref _leaving) == 1)
        {
            return;
        }

        var field = Field(key);
        _held[field] = key;
        try
        {
            _control.Open(key, breakDuration, probeWait ?? _options.ProbeWait);
        }
#pragma warning disable CA1031 // Whatever this one circuit throws, the others and the coordination go on.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            _held.TryRemove(field, out _);
            Log.OperationFailed(_logger, ex, $"apply the fleet's open circuit of {key.Authority} (client '{key.ClientName}')");
            return;
        }

        if (Volatile.Read(ref _leaving) == 1)
        {
            // The stop began while the hold was applied, and may have released the holds before it: release it as well.
            // (Opening and releasing take the circuit's lock, so a release that came first is seen here.)
            _held.TryRemove(field, out _);
            _control.ReleaseAll();
            return;
        }

        _metrics.Record("open", key.ClientName);
    }

    private void MarkUnavailable(Exception? exception, string reason)
    {
        Interlocked.Exchange(ref _available, 0);

        // Once leaving, an operation left in flight fails as the connection closes: that says nothing about Redis.
        if (Volatile.Read(ref _leaving) == 0 && Interlocked.Exchange(ref _outageLogged, 1) == 0)
        {
            Log.Unavailable(_logger, exception, reason);
        }

        if (!_held.IsEmpty || !_probing.IsEmpty)
        {
            // No verdict can arrive while Redis is away, so no circuit may wait for one.
            _held.Clear();
            _probing.Clear();
            _control.ReleaseAll();
        }
    }

    private RedisKey VotesKey(string field) => _keyPrefix + "votes:" + field;

    private RedisKey LeaseKey(string field) => _keyPrefix + "lease:" + field;

    // Authorities never hold a space; client names may, so the client goes last.
    private static string Field(CircuitKey key) => key.Authority + " " + key.ClientName;

    private static bool TryParseField(string field, out CircuitKey key)
    {
        var space = field.IndexOf(' ', StringComparison.Ordinal);
        key = space > 0 ? new CircuitKey(field[(space + 1)..], field[..space]) : default;
        return space > 0;
    }

    private enum WorkKind
    {
        Transition,   // this instance's own decision, to share
        Withdraw,     // a circuit an operator or the fleet closed or isolated here: its vote goes
        Heartbeat,
    }

    private readonly record struct Work(WorkKind Kind, CircuitKey Key, CircuitState PreviousState, CircuitState State, TimeSpan? BreakDuration);
}
