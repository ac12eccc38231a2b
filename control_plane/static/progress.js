// Polls the provisioning steps and swaps them in until the portal is live or has failed.
(() => {
  const container = document.getElementById("progress");
  const poll = async () => {
    const current = document.getElementById("steps");
    if (current && current.dataset.settled === "true") return;
    try {
      const response = await fetch(container.dataset.poll, { headers: { Accept: "text/html" } });
      if (response.ok) container.innerHTML = await response.text();
    } finally {
      setTimeout(poll, 700);
    }
  };
  setTimeout(poll, 500);
})();
