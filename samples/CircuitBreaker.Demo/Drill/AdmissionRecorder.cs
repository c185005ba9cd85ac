using System.Collections.Concurrent;
using System.Globalization;
using CircuitBreaker.Demo.Downstream;

namespace CircuitBreaker.Demo.Drill;

/// <summary>What became of a call the breaker let through, as the innermost handler saw it.</summary>
public enum AdmissionOutcome
{
    /// <summary>Still in flight.</summary>
    Pending,

    /// <summary>A response came back.</summary>
    Response,

    /// <summary>The caller gave up: the AttemptTimeout (or Ctrl+C) cancelled it.</summary>
    GaveUp,

    /// <summary>No connection, or it broke: <see cref="HttpRequestException"/>.</summary>
    ConnectionFailed,

    /// <summary>Any other exception.</summary>
    Other,
}

/// <summary>A call the circuit breaker let through: its id, when it was handed to the network, and what came back.</summary>
public sealed class Admission(long callId, string authority, DateTimeOffset at)
{
    private int _outcome;

    /// <summary>Gets the id the downstream sees in <see cref="FlakyService.CallIdHeader"/>.</summary>
    public long CallId { get; } = callId;

    /// <summary>Gets the authority it was sent to, <c>http://127.0.0.1:port</c>.</summary>
    public string Authority { get; } = authority;

    /// <summary>Gets when the breaker let it through, from the app's clock.</summary>
    public DateTimeOffset At { get; } = at;

    /// <summary>Gets what became of it.</summary>
    public AdmissionOutcome Outcome
    {
        get => (AdmissionOutcome)Volatile.Read(ref _outcome);
        internal set => Volatile.Write(ref _outcome, (int)value);
    }
}

/// <summary>Every call the breakers let through, per service.</summary>
public sealed class AdmissionLog
{
    private readonly ConcurrentDictionary<string, ConcurrentQueue<Admission>> _byService = new(StringComparer.Ordinal);
    private long _lastId;

    /// <summary>Gets the calls let through for <paramref name="service"/>.</summary>
    public IReadOnlyCollection<Admission> Of(string service) => Queue(service);

    internal Admission Add(string service, string authority, DateTimeOffset at)
    {
        var admission = new Admission(Interlocked.Increment(ref _lastId), authority, at);
        Queue(service).Enqueue(admission);
        return admission;
    }

    private ConcurrentQueue<Admission> Queue(string service) => _byService.GetOrAdd(service, _ => new ConcurrentQueue<Admission>());
}

/// <summary>
/// The innermost handler of each drill client, inside the circuit breaker: it sees exactly the calls the breaker let
/// through, records when and what came back, and tags each with an id that the downstream records too. So the drill
/// can reconcile the two sides call by call, show that every request the server received went through the breaker,
/// and that none was let through while the circuit was open.
/// </summary>
public sealed class AdmissionRecorder(AdmissionLog log, string service, TimeProvider time) : DelegatingHandler
{
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var admission = log.Add(service, request.RequestUri!.GetLeftPart(UriPartial.Authority), time.GetUtcNow());
        request.Headers.Remove(FlakyService.CallIdHeader);
        request.Headers.Add(FlakyService.CallIdHeader, admission.CallId.ToString(CultureInfo.InvariantCulture));
        try
        {
            var response = await base.SendAsync(request, cancellationToken);
            admission.Outcome = AdmissionOutcome.Response;
            return response;
        }
        catch (Exception ex)
        {
            admission.Outcome = ex switch
            {
                OperationCanceledException => AdmissionOutcome.GaveUp,
                HttpRequestException => AdmissionOutcome.ConnectionFailed,
                _ => AdmissionOutcome.Other,
            };
            throw;
        }
    }
}
