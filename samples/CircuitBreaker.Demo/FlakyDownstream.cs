using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace CircuitBreaker.Demo;

/// <summary>
/// The downstream service the demo calls: a real Kestrel server on a random loopback port. GET /users/{id}
/// answers 200 with a small JSON body, or 503 while <see cref="Failing"/> is set. It counts every request
/// that reaches it, so the demo can show how many calls the circuit breaker kept away.
/// </summary>
internal sealed class FlakyDownstream : IAsyncDisposable
{
    private readonly WebApplication _app;
    private int _requests;
    private volatile bool _failing;

    public FlakyDownstream()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);

        // Container images set ASPNETCORE_HTTP_PORTS; overriding it with the URL below is intended, not a warning.
        builder.Logging.AddFilter("Microsoft.AspNetCore.Hosting.Diagnostics", LogLevel.Error);
        builder.WebHost.UseUrls("http://127.0.0.1:0"); // port 0: the OS picks a free port

        _app = builder.Build();
        _app.MapGet("/users/{id:int}", GetUser);
    }

    /// <summary>Gets the number of requests that reached the server.</summary>
    public int Requests => Volatile.Read(ref _requests);

    /// <summary>Gets or sets whether the server answers 503 Service Unavailable.</summary>
    public bool Failing
    {
        get => _failing;
        set => _failing = value;
    }

    /// <summary>Starts the server and returns the address it is bound to, with the port the OS picked.</summary>
    public async Task<Uri> StartAsync()
    {
        await _app.StartAsync();
        return new Uri(_app.Urls.First());
    }

    public ValueTask DisposeAsync() => _app.DisposeAsync();

    private IResult GetUser(int id)
    {
        Interlocked.Increment(ref _requests);
        return _failing
            ? Results.StatusCode(StatusCodes.Status503ServiceUnavailable)
            : Results.Text($$"""{"id":{{id}},"name":"user {{id}}"}""", "application/json");
    }
}
