import streamlit as st

st.title("heatmap")
st.info("This page is being built.")
