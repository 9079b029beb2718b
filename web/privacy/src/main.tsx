import { render } from 'preact';
import { App } from './app.tsx';
import { api } from './api.ts';
import './styles.css';

const root = document.getElementById('app')!;
api
  .config()
  .then((config) => {
    // Colours come from the branding file through CSSOM (allowed by the page's CSP, unlike inline styles).
    const style = document.documentElement.style;
    style.setProperty('--pc-primary', config.colors.primary);
    style.setProperty('--pc-primary-text', config.colors.primaryText);
    style.setProperty('--pc-background', config.colors.background);
    style.setProperty('--pc-text', config.colors.text);
    style.setProperty('--pc-focus', config.colors.focus);
    render(<App config={config} />, root);
  })
  .catch(() => {
    root.textContent = 'The privacy center is not available right now. Please try again later.';
  });
