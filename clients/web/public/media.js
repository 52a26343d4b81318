// Images: uploaded to POST /api/media and waited for until processed (media:processed, or
// polling in case the event is missed), and shown from a blob URL since their bytes need the
// token.

import { api } from "/session.js";

const uploads = new Map(); // media id -> what its media:processed resolves

export async function uploadImage(file) {
  const form = new FormData();
  form.append("file", file, file.name);
  const { media } = await api.call("POST", "/api/media", form);
  if (media.status === "ready") return media;
  const processed = await new Promise((resolve) => {
    // Whichever answers first, the event or the poll, ends the polling.
    const settle = (done) => { clearInterval(poll); resolve(done); };
    // In case the event came before we listened, or the socket was away: ask once in a while.
    const poll = setInterval(async () => {
      const now = (await api.call("GET", `/api/media/${media.id}`).catch(() => null))?.media;
      if (now && now.status !== "pending") settle({ ...now, mediaId: now.id });
    }, 2_000);
    uploads.set(media.id, settle);
  });
  uploads.delete(media.id);
  if (processed.status !== "ready") throw new Error(`the image was refused: ${processed.reason ?? processed.status}`);
  return media;
}

// media:processed
export function mediaProcessed(media) {
  uploads.get(media.mediaId)?.(media);
}

// Its thumbnail, else the image itself.
export function thumbnail(mediaId) {
  const image = document.createElement("img");
  image.className = "thumbnail";
  image.alt = "image";
  api.blobUrl(`/api/media/${mediaId}/thumbnail`)
    .catch(() => api.blobUrl(`/api/media/${mediaId}/content`))
    .then((url) => { image.src = url; })
    .catch(() => { image.alt = "image (not available)"; });
  return image;
}
