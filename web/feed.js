// One feed: its health and its newest items. Everything shown here comes from the feed's server,
// a stranger: text is set as text, an item's HTML summary is reduced to its text in an inert
// document (DOMParser runs no script and loads nothing), and only http(s) links become links.
const feedId = decodeURIComponent(window.location.pathname.split('/').pop());
const ITEMS = 20;
const SUMMARY_CHARS = 280;

function httpUrl(text) {
  try {
    const url = new URL(text);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch {
    return null;
  }
}

function plainText(html) {
  const doc = new DOMParser().parseFromString(html, 'text/html');
  const text = (doc.body.textContent || '').replace(/\s+/g, ' ').trim();
  return text.length > SUMMARY_CHARS ? `${text.slice(0, SUMMARY_CHARS - 1)}…` : text;
}

function when(text) {
  if (!text) return '';
  const date = new Date(text);
  return Number.isNaN(date.getTime()) ? text : date.toLocaleString();
}

function renderHealth(feed) {
  document.title = `${feed.title || feed.url} — feedpipe`;
  document.getElementById('feed-title').textContent = feed.title || feed.url;
  document.getElementById('feed-url').textContent = feed.final_url && feed.final_url !== feed.url
    ? `${feed.url} → ${feed.final_url}` : feed.url;
  for (const field of ['last_fetch_at', 'last_success_at', 'next_fetch_allowed_at'])
    document.getElementById(field).textContent = when(feed[field]) || '—';
  for (const field of ['last_http_status', 'consecutive_failures', 'last_error', 'items_total']) {
    const value = feed[field];
    document.getElementById(field).textContent = value === null || value === undefined || value === '' ? '—' : String(value);
  }
}

function renderItem(item) {
  const li = document.createElement('li');
  li.dataset.testid = 'item';
  li.setAttribute('data-testid', 'item');
  const title = item.title || item.link || item.guid || '(untitled)';
  const link = item.link ? httpUrl(item.link) : null;
  const heading = document.createElement(link ? 'a' : 'strong');
  heading.className = 'title';
  heading.textContent = title;
  if (link) {
    heading.href = link;
    heading.rel = 'noopener noreferrer nofollow';
  }
  li.append(heading);
  const date = item.published || item.updated || item.first_seen_at;
  if (date) {
    const time = document.createElement('div');
    time.className = 'hint';
    time.textContent = when(date);
    li.append(time);
  }
  const summary = plainText(item.summary || item.content || '');
  if (summary) {
    const p = document.createElement('p');
    p.className = 'summary';
    p.textContent = summary;
    li.append(p);
  }
  return li;
}

async function main() {
  const [feedRes, itemsRes] = await Promise.all([
    fetch(`/v1/feeds/${encodeURIComponent(feedId)}`),
    fetch(`/v1/feeds/${encodeURIComponent(feedId)}/items?limit=${ITEMS}`),
  ]);
  if (!feedRes.ok) {
    document.getElementById('feed-title').textContent = 'Feed not found';
    document.getElementById('error').textContent = feedRes.status === 404 ? `No feed with id ${feedId}.` : `HTTP ${feedRes.status}`;
    return;
  }
  renderHealth(await feedRes.json());
  if (itemsRes.ok) {
    const { items } = await itemsRes.json();
    document.getElementById('items').replaceChildren(...items.map(renderItem));
    if (!items.length) document.getElementById('items').textContent = 'No items stored yet.';
  }
}
main().catch((err) => {
  document.getElementById('error').textContent = `Cannot load this feed: ${err.message}`;
});
